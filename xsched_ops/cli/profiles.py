"""`xsched-ops profiles list|show`: the experiment profiles and their overrides."""

from __future__ import annotations

import json

import typer

from xsched_ops.cli import common

profiles_app = typer.Typer(name="profiles", help="List and show experiment profiles.", no_args_is_help=True)


@profiles_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Profiles found in XSCHED_OPS_PROFILES folders and the repository's profiles/."""
    from rich.text import Text

    from xsched_ops import profiles as profiles_mod
    from xsched_ops.cli.render import plain_table, print_table

    found = profiles_mod.list_profiles()
    if as_json:
        rows = [{"name": name, "path": str(path),
                 "error": loaded.one_line() if isinstance(loaded, Exception) else None,
                 "summary": None if isinstance(loaded, Exception) else profiles_mod.summary_line(loaded)}
                for name, path, loaded in found]
        typer.echo(json.dumps({"schema_version": 1, "profiles": rows}, indent=2))
        return
    # never cut: a path or a name keeps a line of its own; too narrow for columns, one block per profile
    table = plain_table("name", "summary", "file")
    for name, path, loaded in found:
        summary = Text(f"invalid: {loaded.one_line()}", style="red") if isinstance(loaded, Exception) else \
            Text(profiles_mod.summary_line(loaded))
        table.add_row(Text(name), summary, Text(str(path)))
    print_table(common.stdout_console(), table)
    if any(isinstance(loaded, Exception) for _, _, loaded in found):
        raise typer.Exit(1)


@profiles_app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Profile name or path to a .toml file."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    overrides: list[str] = typer.Option([], "--set", help="Override a value, e.g. --set low.batch=512 (repeatable)."),
    duration: float | None = typer.Option(None, "--duration", help="Measurement duration in seconds."),
) -> None:
    """The profile with every default filled in and the overrides applied."""
    from xsched_ops import profiles as profiles_mod

    path = profiles_mod.find_profile(name)
    profile = profiles_mod.load_profile(str(path), overrides, duration_s=duration)
    data = profile.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps({"schema_version": 1, "path": str(path), "profile": data}, indent=2))
        return
    from rich.text import Text

    from xsched_ops.cli.render import print_lines, print_wrapped

    console = common.stdout_console()
    print_wrapped(console, Text.assemble((profile.name, "bold"), f" ({path})"), "", "  ")
    if profile.description:
        print_wrapped(console, profile.description)
    print_wrapped(console, profiles_mod.summary_line(profile))
    print_lines(console, _setting_lines(data, ""))  # KEY = VALUE lines stay whole, ready for --set


def _setting_lines(data: dict, prefix: str) -> list[str]:
    lines = []
    for key, value in data.items():
        dotted = f"{prefix}{key}" if ":" not in key else f'{prefix}"{key}"'
        if isinstance(value, dict):
            lines += _setting_lines(value, f"{dotted}.")
        else:
            lines.append(f"  {dotted} = {json.dumps(value)}")
    return lines


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(profiles_app, name="profiles")
