"""`xsched-ops info`: who and where the target is (a quick check that xsched-ops can reach it)."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer

from xsched_ops.cli import common

SCHEMA_VERSION = 1


def info(
    container: str | None = typer.Option(None, "--container", "-c", help="Container name or id."),
    local: bool = typer.Option(False, "--local", help="Use this host instead of a container."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Show the target's identity, engine and user."""
    from xsched_ops.target.open import open_target

    with open_target(container, local, common.STATE.docker_host) as target:
        facts = target.facts()
    if as_json:
        print(json.dumps({"version": SCHEMA_VERSION, "target": asdict(facts)}, indent=2))
        return
    from rich.text import Text

    from xsched_ops.cli.render import print_wrapped

    console = common.stdout_console()
    for key, value in asdict(facts).items():
        if value:
            print_wrapped(console, Text.assemble((key, "bold"), f": {value}"), "", "    ")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
