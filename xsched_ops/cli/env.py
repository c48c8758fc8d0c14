"""`xsched-ops env`: the environment that runs a process under XSched in the target."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING

import typer

from xsched_ops.cli import common
from xsched_ops.errors import UsageError

if TYPE_CHECKING:
    from xsched_ops.environment.builder import BuiltEnvironment

SCHEMA_VERSION = 1
FORMATS = ("sh", "docker", "dotenv", "json")


def _dotenv_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("$", "\\$")
    return f'"{escaped}"'


def render(built: BuiltEnvironment, output_format: str, container: str | None, full: bool) -> str:
    variables = built.env if full else built.xsched_only()
    if output_format == "json":
        return json.dumps({
            "version": SCHEMA_VERSION, "route": built.route, "role": built.role,
            "real_runtime": built.real_runtime, "env": variables,
            "changes": [change.__dict__ for change in built.changes],
        }, indent=2)
    if output_format == "sh":
        return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())
    if output_format == "dotenv":
        return "\n".join(f"{name}={_dotenv_value(value)}" for name, value in variables.items())
    if output_format == "docker":
        flags = " ".join(f"-e {shlex.quote(f'{name}={value}')}" for name, value in variables.items())
        return f"docker exec {flags} {shlex.quote(container or 'CONTAINER')} python3 ..."
    raise UsageError(f"unknown format {output_format!r}", f"choose one of: {', '.join(FORMATS)}")


def env(
    container: str | None = typer.Option(None, "--container", "-c", help="Container name or id."),
    local: bool = typer.Option(False, "--local", help="Use this host instead of a container."),
    xsched_prefix: str | None = typer.Option(None, "--xsched-prefix", help="XSched install prefix (holds lib/, bin/)."),
    platform: str | None = typer.Option(None, "--platform", help="Force the platform (hip, cuda)."),
    route: str | None = typer.Option(None, "--route", help="preload (shim in LD_PRELOAD) or libpath (lib folder first)."),
    role: str | None = typer.Option(None, "--role", help="Add the XSched settings of a role: high or low."),
    output_format: str = typer.Option("sh", "--format", "-f", help="sh, docker, dotenv or json."),
    full: bool = typer.Option(False, "--full", help="Print every variable, not only those XSched needs changed."),
) -> None:
    """Print the environment that makes a process load XSched correctly in the target."""
    from xsched_ops.environment.builder import build_environment
    from xsched_ops.target.open import open_target
    from xsched_ops.xsched.install import discover
    from xsched_ops.xsched.settings import DEFAULT_ROLES

    common.check_route(route)
    if role is not None and role not in DEFAULT_ROLES:
        raise UsageError(f"unknown role {role!r}", f"choose one of: {', '.join(DEFAULT_ROLES)}")
    if output_format not in FORMATS:
        raise UsageError(f"unknown format {output_format!r}", f"choose one of: {', '.join(FORMATS)}")
    with open_target(container, local, common.STATE.docker_host) as target:
        fs = target.fs()
        base = target.environment()
        install = discover(fs, base, xsched_prefix, platform)
        built = build_environment(base, install, fs, route=route, role=role,  # type: ignore[arg-type]
                                  scheduling=DEFAULT_ROLES[role] if role else None)
    print(render(built, output_format, container, full))
    if output_format != "json":
        from xsched_ops.cli.render import print_wrapped

        console = common.stderr_console()
        for change in built.changes:
            print_wrapped(console, f"# {change.name}: {change.reason}", "", "#   ", style="dim")


def register(app: typer.Typer) -> None:
    app.command("env")(env)
