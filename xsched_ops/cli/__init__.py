"""The command line: one root typer app, one module per command group.

Errors the user can act on (``XSchedOpsError``) print one line to stderr and exit with their
own code; a traceback appears only with ``--debug`` (or ``XSCHED_OPS_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from xsched_ops import __version__
from xsched_ops.cli import common
from xsched_ops.errors import XSchedOpsError

INTERRUPTED_EXIT_CODE = 130  # Ctrl-C outside a run's trials (during one: RunFailedError's code)

app = typer.Typer(
    name="xsched-ops",
    help="Repair XSched environments in GPU containers and run trustworthy dual-model latency experiments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"xsched-ops {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    docker_host: str | None = typer.Option(
        None, "--docker-host", envvar="XSCHED_OPS_DOCKER_HOST",
        help="Docker engine address (default: DOCKER_HOST, then the current docker context).",
    ),
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    common.STATE.debug = debug or common.STATE.debug
    common.STATE.docker_host = docker_host


def _mount_commands() -> None:
    # Each module adds its commands or command group to the root app.
    from xsched_ops.cli import (
        compare,
        doctor,
        env,
        fix_and_rerun,
        info,
        ldd,
        profiles,
        report,
        results,
        run,
        sandbox,
    )

    for module in (doctor, ldd, env, run, fix_and_rerun, compare, report, results, profiles, sandbox, info):
        module.register(app)


_mount_commands()


def invoke(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code (used by ``main`` and by tests)."""
    common.STATE.reset()
    common.STATE.debug = os.environ.get("XSCHED_OPS_DEBUG", "") not in ("", "0")
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        common.STATE.debug = True
    try:
        result = app(args=args, prog_name="xsched-ops", standalone_mode=False)
    except XSchedOpsError as err:
        if common.STATE.debug:
            traceback.print_exc()
        common.stderr_console().print(f"[bold red]error:[/] {err.one_line()}", highlight=False, soft_wrap=True)
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        common.stderr_console().print("interrupted")
        return INTERRUPTED_EXIT_CODE
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.TyperException as err:  # usage errors from the parser
        show = getattr(err, "show", None)
        if show is not None:
            show()
        else:
            common.stderr_console().print(f"error: {err.format_message()}")
        return err.exit_code
    if result == INTERRUPTED_EXIT_CODE:  # typer turns Ctrl-C into this exit code, silently
        common.stderr_console().print("interrupted")
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(invoke(argv))
