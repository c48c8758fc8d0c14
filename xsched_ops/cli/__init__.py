"""The command line: one root typer app, one module per command group.

Errors the user can act on (``XSchedOpsError``) print one line to stderr and exit with their
own code; a traceback appears only with ``--debug`` (or ``XSCHED_OPS_DEBUG=1``).

Start-up costs nothing beyond typer: this module imports only ``gc``, ``os`` and ``sys``, the command
modules import only typer and ``cli.common``, and every command imports what it needs (the
loader, the Docker SDK, pydantic models, numpy, matplotlib) in its own body. ``--version`` and
``--help`` therefore load none of them. The tree is built inside ``invoke``, so a Ctrl-C while
Python imports it prints one line and exits 130, like a Ctrl-C later on.

The conventions of the whole tree (metavars that say what to type, usage lines without braces, a
usage error as one line) are applied in ``cli.usage``; terminal output is rendered by ``cli.render``.
"""

from __future__ import annotations

import gc
import os
import sys

INTERRUPTED_EXIT_CODE = 130  # Ctrl-C outside a run's trials (during one: RunFailedError's code)

# Command modules in the order ``--help`` lists their commands; each has ``register(app)``.
COMMAND_MODULES = ("doctor", "ldd", "env", "run", "fix_and_rerun", "sweep", "compare", "report", "results",
                   "profiles", "sandbox", "info")

_app = None


def build_app():  # -> typer.Typer (not imported at module level: see the module's docstring)
    """The root typer app with every command mounted (built once per process)."""
    global _app
    if _app is not None:
        return _app
    import importlib

    import typer

    from xsched_ops import __version__
    from xsched_ops.cli import common

    app = typer.Typer(
        name="xsched-ops",
        help="Repair XSched environments in GPU containers and run trustworthy dual-model latency experiments.",
        no_args_is_help=True,
        add_completion=True,  # --install-completion / --show-completion, as typer offers them
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
        # click's plain help: its text is text (rich markup would eat a "[sweep]" in it), no boxes to
        # copy from, and --help imports no rich
        rich_markup_mode=None,
    )

    def version_callback(value: bool) -> None:
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
        version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                     help="Print the version and exit."),
    ) -> None:
        common.STATE.debug = debug or common.STATE.debug
        common.STATE.docker_host = docker_host

    for name in COMMAND_MODULES:
        importlib.import_module(f"xsched_ops.cli.{name}").register(app)
    _app = app
    return app


def __getattr__(name: str):
    if name == "app":  # ``from xsched_ops.cli import app`` still works
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _print_interrupted() -> int:
    # Plain write: the interrupt may have come while rich (or anything else) was half imported.
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return INTERRUPTED_EXIT_CODE


def invoke(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code (used by ``main`` and by tests)."""
    try:
        return _invoke(argv)
    except KeyboardInterrupt:  # while the tree was imported or built, or while an error was printed
        return _print_interrupted()


def _invoke(argv: list[str] | None) -> int:
    import typer
    import typer.main
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    from xsched_ops.cli import common, usage
    from xsched_ops.errors import XSchedOpsError

    common.STATE.reset()
    common.STATE.debug = os.environ.get("XSCHED_OPS_DEBUG", "") not in ("", "0")
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        common.STATE.debug = True
    try:
        command = usage.tidy(typer.main.get_command(build_app()))
        result = command.main(args=args, prog_name="xsched-ops", standalone_mode=False)
    except XSchedOpsError as err:
        if common.STATE.debug:
            import traceback

            traceback.print_exc()
        from rich.text import Text

        # The message is taken literally: a "[a-z]" in it is text, not markup.
        common.stderr_console().print(Text.assemble(("error:", "bold red"), " ", err.one_line()), highlight=False,
                                      soft_wrap=True)
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return _print_interrupted()
    except typer.Exit as exit_:
        return exit_.exit_code
    except NoArgsIsHelpError as err:  # a group given no command: its help
        err.show()
        return err.exit_code
    except UsageError as err:  # from the parser: one line, what is wrong and which help to read
        sys.stderr.write(usage.usage_error_line(err) + "\n")
        return err.exit_code
    except typer.TyperException as err:
        show = getattr(err, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"xsched-ops: {' '.join(str(err).split())}\n")
        return getattr(err, "exit_code", 1)
    if result == INTERRUPTED_EXIT_CODE:  # typer turns Ctrl-C into this exit code, silently
        _print_interrupted()
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> None:
    code = invoke(argv)
    # The process ends here. Without this the interpreter's teardown starts with a full pass of
    # the cycle collector over everything still alive (a batch of analyses keeps hundreds of
    # thousands of objects): 0.1 s for nothing. Frozen objects are still freed as modules are
    # cleared; only garbage cycles are left to the exit, which frees all memory anyway.
    gc.freeze()
    sys.exit(code)
