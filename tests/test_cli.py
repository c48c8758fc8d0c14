"""The command line itself: help, version, usage errors; as a user runs it (a real process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["doctor", "ldd", "env", "run", "fix-and-rerun", "sweep", "compare", "report", "results", "profiles",
            "sandbox", "info"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xsched_ops", *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": "/tmp"})


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f" {command} " in result.stdout, command


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


@pytest.mark.parametrize("command", [[], ["doctor"], ["sweep"]])
def test_dash_h_is_help(command: list[str]) -> None:
    result = run_cli(*command, "-h")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and "--help" in result.stdout


def test_shell_completion_is_offered() -> None:
    assert "--install-completion" in run_cli("--help").stdout
    result = run_cli("--show-completion", "bash")
    assert result.returncode == 0 and "_xsched_ops_completion" in result.stdout


def test_unknown_option_is_a_usage_error_without_traceback() -> None:
    result = run_cli("doctor", "--no-such-option")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_no_target_is_one_line_with_a_hint() -> None:
    result = run_cli("doctor")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--container" in lines[0] and "--local" in lines[0]


def test_debug_shows_the_traceback() -> None:
    result = run_cli("--debug", "doctor")
    assert result.returncode == 2
    assert "Traceback" in result.stderr


@pytest.mark.parametrize("command", [["doctor"], ["run", "intensive"], ["fix-and-rerun", "intensive"], ["env"]])
def test_an_unknown_route_is_refused_before_anything_runs(command):
    done = run_cli(*command, "--local", "--route", "foo")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: unknown route 'foo' -- choose preload or libpath"
