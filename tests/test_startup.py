"""The command line's start-up: the command tree costs nothing to mount, heavy modules load only in
the commands that use them, and a Ctrl-C while Python imports gives one line and exit 130.

No timing here (the machine is shared): bench/startup.py measures; these tests check the causes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

# Modules that only some commands need (plots, statistics, models, the engine, ELF reading).
HEAVY = ("matplotlib", "numpy", "pydantic", "docker", "requests", "elftools", "xsched_ops.loader",
         "xsched_ops.elf", "xsched_ops.results", "xsched_ops.report", "xsched_ops.doctor", "xsched_ops.experiment",
         "xsched_ops.target", "xsched_ops.profiles", "xsched_ops.sandbox")

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "COLUMNS": "200"}


def loaded_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; the top-level names of the modules loaded then."""
    script = (code + "\nimport json, sys\n"
              "print('MODULES ' + json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=ENV)
    line = next(line for line in result.stdout.splitlines() if line.startswith("MODULES "))
    return {"modules": json.loads(line.removeprefix("MODULES ")), "stdout": result.stdout}


def heavy_in(modules: list[str]) -> list[str]:
    return sorted({name for name in modules for heavy in HEAVY if name == heavy or name.startswith(heavy + ".")})


def test_importing_the_cli_loads_nothing_but_os_and_sys() -> None:
    modules = loaded_after("import xsched_ops.cli")["modules"]
    assert "typer" not in modules and "rich" not in modules
    assert heavy_in(modules) == []


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["doctor", "--help"], ["ldd", "--help"],
                                  ["report", "--help"], ["sandbox", "--help"], ["results", "list", "--help"]])
def test_version_and_help_load_no_heavy_module(argv: list[str]) -> None:
    run = loaded_after("import contextlib, io\nfrom xsched_ops.cli import invoke\n"
                       f"with contextlib.redirect_stdout(io.StringIO()):\n    code = invoke({argv!r})\n"
                       "assert code == 0, code")
    # pydantic: typer itself builds its option parsers with it for a command's own --help.
    allowed = {"pydantic"} if len(argv) > 1 else set()
    assert [name for name in heavy_in(run["modules"]) if name.split(".")[0] not in allowed] == []


def _mounted_commands() -> dict[str, str]:
    """Every command and group the root app mounts, with the first words of its help text."""
    import inspect

    from xsched_ops.cli import build_app

    app = build_app()
    found = {}
    for info in app.registered_commands:
        found[info.name] = inspect.getdoc(info.callback).splitlines()[0]
    for info in app.registered_groups:
        found[info.name] = info.typer_instance.info.help
    return {name: " ".join(text.split()[:4]) for name, text in found.items()}


def test_help_lists_every_command_with_its_help_text() -> None:
    from xsched_ops.cli import COMMAND_MODULES

    result = subprocess.run([sys.executable, "-m", "xsched_ops", "--help"], capture_output=True, text=True,
                            timeout=120, env=ENV)
    assert result.returncode == 0
    commands = _mounted_commands()
    assert len(commands) >= len(COMMAND_MODULES)
    for command, words in commands.items():
        line = next((line for line in result.stdout.splitlines()
                     if line.strip("│ ").startswith(f"{command} ")), None)
        assert line is not None and words in line, (command, words, result.stdout)


def test_constants_repeated_for_a_light_start_agree_with_their_source() -> None:
    from xsched_ops.cli import common, report
    from xsched_ops.report import FORMATS
    from xsched_ops.results.store import DEFAULT_RESULTS_DIR

    assert common.DEFAULT_RESULTS_DIR == DEFAULT_RESULTS_DIR
    assert report.FORMATS == FORMATS


# -- Ctrl-C while Python imports the command tree ----------------------------------------------
# A finder that raises KeyboardInterrupt (as SIGINT does) when a module is first imported, or
# announces the import and sleeps so that a real SIGINT can be sent then.
_INTERRUPTING_IMPORT = """
import sys, time
class Interrupting:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            if {sleep}:
                sys.stderr.write("IMPORTING\\n"); sys.stderr.flush(); time.sleep(30)
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Interrupting())
from xsched_ops.cli import main
main({argv!r})
"""


@pytest.mark.parametrize("module,argv", [("typer", ["--version"]), ("xsched_ops.cli.run", ["--help"]),
                                         ("xsched_ops.cli.sandbox", ["sandbox", "list"]),
                                         ("xsched_ops.doctor", ["doctor", "--local"])])
def test_interrupt_while_importing_is_one_line_and_130(module: str, argv: list[str]) -> None:
    script = _INTERRUPTING_IMPORT.format(module=module, sleep=False, argv=argv)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "interrupted\n"


def test_a_real_sigint_during_start_up_is_one_line_and_130() -> None:
    script = _INTERRUPTING_IMPORT.format(module="typer", sleep=True, argv=["--help"])
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=ENV)
    assert process.stderr is not None
    assert process.stderr.readline() == "IMPORTING\n"
    time.sleep(0.1)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr == "interrupted\n"
