"""`xsched-ops sandbox`: a ROCm-like container that needs no registry and no GPU."""

from __future__ import annotations

import typer
from rich.table import Table

from xsched_ops.cli import common

sandbox_app = typer.Typer(help="Create and remove sandbox containers (a ROCm-like image with an XSched-like install).",
                          no_args_is_help=True)


def _progress(message: str) -> None:
    style = "dim" if message.startswith("  ") else "cyan"
    common.stderr_console().print(message, style=style, highlight=False, markup=False)


@sandbox_app.command("create")
def create(
    name: str = typer.Argument(..., help="Name of the new container."),
    scenario: str = typer.Option("ok", "--scenario", "-s", help="What to set up (see `xsched-ops sandbox scenarios`)."),
) -> None:
    """Create a sandbox container with an XSched-like install and a scenario applied."""
    from xsched_ops.sandbox import create_sandbox, scenarios

    scenarios.get(scenario)  # an unknown name fails before anything is built
    info = create_sandbox(name, scenario, docker_host=common.STATE.docker_host, progress=_progress)
    common.stdout_console().print(info.name, markup=False)
    common.stderr_console().print(
        f"sandbox {info.name} ({info.scenario}) runs image {info.image}; try `xsched-ops doctor --container {info.name}`",
        highlight=False, markup=False)


@sandbox_app.command("rm")
def remove(name: str = typer.Argument(..., help="Sandbox to remove.")) -> None:
    """Remove a sandbox container (only containers labelled as sandboxes)."""
    from xsched_ops.sandbox import remove_sandbox

    info = remove_sandbox(name, docker_host=common.STATE.docker_host)
    common.stderr_console().print(f"removed sandbox {info.name} ({info.scenario})", highlight=False, markup=False)


@sandbox_app.command("list")
def list_command() -> None:
    """List sandbox containers with their scenario."""
    from xsched_ops.sandbox import list_sandboxes

    sandboxes = list_sandboxes(docker_host=common.STATE.docker_host)
    if not sandboxes:
        common.stderr_console().print("no sandboxes")
        return
    # Plain aligned columns on stdout: data that scripts can read, never cropped to the terminal.
    rows = [("NAME", "SCENARIO", "STATUS", "IMAGE", "ID")]
    rows += [(info.name, info.scenario, info.status, info.image, info.id) for info in sandboxes]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@sandbox_app.command("scenarios")
def scenarios_command() -> None:
    """List the scenarios with what each sets up."""
    from xsched_ops.sandbox import SCENARIOS

    table = Table("scenario", "description", box=None, show_lines=False)
    for scenario in SCENARIOS.values():
        table.add_row(scenario.name, scenario.description)
    common.stdout_console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
