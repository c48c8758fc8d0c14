"""Help and usage errors (issue 14, part 7): metavars that say what to type, usage lines without braces,
help wrapped between words only, message text never eaten as markup, and a usage error from the parser as
one line (what is wrong, naming it, and which help to read), exit 2, no traceback."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest

from xsched_ops.cli import invoke

BANNED = ("<str", "<bool", "<list", "<int", "<float", "<path", "{", "[[", "]]")


def run_in_process(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = invoke(argv)
    return code, out.getvalue(), err.getvalue()


def run_cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xsched_ops", *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": str(columns), "HOME": "/tmp"})


def every_command() -> list[list[str]]:
    """Every command path of the tree: [], ["doctor"], ["results", "list"], ..."""
    import typer.main

    from xsched_ops.cli import build_app

    found: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                walk(sub, [*path, name])

    walk(typer.main.get_command(build_app()), [])
    return found


COMMANDS = every_command()


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "root")
def test_help_says_what_to_type_and_has_no_braces(path: list[str], monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_in_process([*path, "--help"])
    assert code == 0, err
    found = [(banned, line) for line in out.splitlines() for banned in BANNED if banned in line]
    assert not found, found
    assert "…" not in out


def test_usage_lines_and_metavars(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    expected = {("run",): ["Usage: xsched-ops run [OPTIONS] PROFILE", "-c, --container NAME", "--set KEY=VALUE",
                           "--repeat N", "--mode MODE", "--results-dir PATH", "--backend torch|sim"],
                ("compare",): ["Usage: xsched-ops compare [OPTIONS] A [B]"],
                ("ldd",): ["Usage: xsched-ops ldd [OPTIONS] FILE...", "--env NAME=VALUE"],
                ("report",): ["Usage: xsched-ops report [OPTIONS] RUN..."],
                ("sandbox", "create"): ["Usage: xsched-ops sandbox create [OPTIONS] NAME"],
                ("results", "show"): ["Usage: xsched-ops results show [OPTIONS] RUN"]}
    for path, fragments in expected.items():
        code, out, _ = run_in_process([*path, "--help"])
        assert code == 0
        lines = [" ".join(line.split()) for line in out.splitlines()]
        for fragment in fragments:
            assert any(fragment in line for line in lines), (path, fragment, out)
        flags = [line for line in lines if line.startswith("--json")]
        assert all(line.split()[1][0].isupper() for line in flags), flags  # "--json Print ...", no type


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_help_wraps_between_words_only(columns: int) -> None:
    result = run_cli("sandbox", "prune", "--help", columns=columns)
    assert result.returncode == 0
    assert "xsched-ops-sandbox:<hash>" in result.stdout  # click alone breaks it at the hyphen
    result = run_cli("--help", columns=columns)
    words = " ".join(result.stdout.split())
    assert "Run a grid of cells (e.g. --grid low.batch=8,64,256,1024), each an ordinary run" in words
    assert "..." not in result.stdout.replace("[ARGS]...", "")  # the whole first paragraph of each command


def test_square_brackets_in_help_are_text() -> None:
    result = run_cli("sweep", "--help", columns=200)
    assert "[sweep]" in result.stdout  # "the profile's [sweep] table": rich markup would eat it


@pytest.mark.parametrize("argv,line", [
    (["run", "intensive", "--foo"], "xsched-ops: no such option --foo; see xsched-ops run --help"),
    (["doctor", "--rout", "x"], "xsched-ops: no such option --rout (did you mean --route?); see xsched-ops doctor --help"),
    (["run"], "xsched-ops: missing argument PROFILE; see xsched-ops run --help"),
    (["results", "show"], "xsched-ops: missing argument RUN; see xsched-ops results show --help"),
    (["run", "intensive", "--repeat", "0"], "xsched-ops: invalid value for --repeat: "),
    (["doctor", "-c"], "xsched-ops: option -c requires an argument; see xsched-ops doctor --help"),
    (["nosuch"], "xsched-ops: no such command nosuch; see xsched-ops --help"),
    (["docto"], "xsched-ops: no such command docto (did you mean doctor?); see xsched-ops --help"),
    (["compare", "a", "b", "c"], "xsched-ops: got unexpected extra argument(s) (c); see xsched-ops compare --help"),
])
def test_usage_errors_are_one_line(argv: list[str], line: str) -> None:
    code, out, err = run_in_process(argv)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), err
    assert "Traceback" not in err and "╭" not in err and "Usage:" not in err


def test_usage_error_of_a_real_process() -> None:
    result = run_cli("doctor", "--no-such-option")
    assert result.returncode == 2
    assert result.stderr == "xsched-ops: no such option --no-such-option; see xsched-ops doctor --help\n"


def test_message_text_is_never_eaten_as_markup() -> None:
    code, _, err = run_in_process(["env", "--local", "--format", "[bold]x[a-z]"])
    assert code == 2
    assert re.search(r"^error: unknown format '\[bold\]x\[a-z\]'", err), err
