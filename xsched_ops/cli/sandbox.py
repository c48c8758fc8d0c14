"""`xsched-ops sandbox`: a ROCm-like container that needs no registry and no GPU."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from xsched_ops.cli import common

if TYPE_CHECKING:
    from xsched_ops.sandbox.prune import PruneReport

sandbox_app = typer.Typer(help="Create and remove sandbox containers (a ROCm-like image with an XSched-like install) "
                               "and prune old sandbox images.",
                          no_args_is_help=True)


def _progress(message: str) -> None:
    style = "dim" if message.startswith("  ") else "cyan"
    common.stderr_console().print(message, style=style, highlight=False, markup=False)


@sandbox_app.command("create")
def create(
    name: str = typer.Argument(..., help="Name of the new container."),
    scenario: str = typer.Option("ok", "--scenario", "-s", help="What to set up (see `xsched-ops sandbox scenarios`)."),
    mirror: str | None = typer.Option(None, "--mirror", metavar="URL",
                                      help="Debian mirror for building the sandbox image (default: "
                                           "$XSCHED_OPS_DEBIAN_MIRROR, then the host's apt configuration)."),
) -> None:
    """Create a sandbox container with an XSched-like install and a scenario applied."""
    from xsched_ops.sandbox import create_sandbox, scenarios

    scenarios.get(scenario)  # an unknown name fails before anything is built
    info = create_sandbox(name, scenario, docker_host=common.STATE.docker_host, progress=_progress,
                          mirror=mirror)
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


@sandbox_app.command("ls", hidden=True)  # docker's word for it
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
    from rich.text import Text

    from xsched_ops.cli.render import plain_table, print_table
    from xsched_ops.sandbox import SCENARIOS

    table = plain_table("scenario", "description")
    for scenario in SCENARIOS.values():
        table.add_row(Text(scenario.name), Text(scenario.description))
    print_table(common.stdout_console(), table)


@sandbox_app.command("prune")
def prune_command(
    all_images: bool = typer.Option(False, "--all", help="Also remove the current image (the next `sandbox create` "
                                                         "builds it again)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
    match: list[str] = typer.Option([], "--match", metavar="GLOB",
                                    help="Only tags matching this pattern, e.g. 'prunetest-*' (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (schema version 1) to stdout."),
) -> None:
    """Remove cached sandbox images of older recipes: every xsched-ops-sandbox:<hash> tag but the current one.

    A tag that a container (running or stopped) was created from is kept and named.

    Only the repository xsched-ops-sandbox is touched; an image that another tag still names is only untagged.

    Prints one line per image removed with its size, then the total; --json: the same as a JSON document
    (schema version 1) on stdout.
    """
    from xsched_ops.errors import EngineError
    from xsched_ops.sandbox import prune

    report = prune.prune_images(docker_host=common.STATE.docker_host, include_current=all_images, dry_run=dry_run,
                                patterns=match)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print_prune(report)
    if report.failed:
        listed = "; ".join(f"{entry.tag} ({entry.detail})" for entry in report.failed)
        raise EngineError(f"could not remove {len(report.failed)} sandbox image(s): {listed}",
                          "run `xsched-ops sandbox prune` again, or check the engine's log")


def _print_prune(report: PruneReport) -> None:
    from xsched_ops.sandbox import prune

    messages = common.stderr_console()
    verb = "would remove" if report.dry_run else "removed"
    width = max((len(entry.tag) for entry in report.removed), default=0)
    for entry in report.removed:
        line = f"{verb} {entry.tag.ljust(width)}  {prune.human_size(entry.size)}"
        if entry.kept_by:
            line += f" (untagged only: the image is also tagged {', '.join(entry.kept_by)}; nothing freed)"
        typer.echo(line)
    for entry in report.kept:
        if entry.reason == prune.IN_USE:
            if entry.containers:
                why = f"in use by container{'s' if len(entry.containers) > 1 else ''} {', '.join(entry.containers)}"
            else:  # a container appeared after the listing and the engine refused
                why = f"in use ({entry.detail})"
        elif entry.reason == prune.CURRENT:
            why = "the current image (--all removes it)"
        else:
            why = "already removed by someone else"
        messages.print(f"kept {entry.tag}: {why}", highlight=False, markup=False)
    for entry in report.failed:
        messages.print(f"failed {entry.tag}: {entry.detail}", highlight=False, markup=False)
    count = len(report.removed)
    images = f"{count} image{'' if count == 1 else 's'}"
    if report.dry_run:
        typer.echo(f"total: {images} would be removed, {prune.human_size(report.freed)} would be freed "
                   "(dry run: nothing removed)")
    else:
        typer.echo(f"total: {images} removed, {prune.human_size(report.freed)} freed")


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
