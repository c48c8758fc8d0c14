"""``--docker-host`` / ``DOCKER_HOST`` (issue 15, part 7): a malformed address says it is malformed (exit 2),
an unreachable one says so with a hint that fits it (exit 10), ``ssh://`` without its dependency says
what to install (exit 10); never "start one: sudo dockerd &" for an address that is not the default.

No engine is needed: every case fails before or at the first request.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xsched_ops.cli import invoke
from xsched_ops.errors import EngineUnavailableError, UsageError, XSchedOpsError
from xsched_ops.target import engine

MALFORMED = [
    ("foo://x", "the scheme 'foo://' is not one of"),
    ("tcp://", "tcp:// names no host"),
    ("tcp://:2375", "tcp:// names no host"),
    ("tcp://host", "port is required"),
    ("tcp://host:notaport", "Port could not be cast"),
    ("http://", "http:// names no host"),
    ("unix://", "unix:// takes the socket's absolute path"),
    ("unix://relative.sock", "unix:// takes the socket's absolute path"),
    ("ssh://", "ssh:// names no host"),
    ("ssh://user@", "ssh:// names no host"),
    ("/var/run/docker.sock", "it has no scheme"),
    ("localhost:2375", "it has no scheme"),
    ("fd://", "the scheme 'fd://' is not one of"),
]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = invoke(list(argv))
    out, err = capsys.readouterr()
    assert out == "", out
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return code, " ".join(lines[0].split())


@pytest.mark.parametrize(("address", "why"), MALFORMED)
@pytest.mark.parametrize("command", [["info"], ["doctor", "--backend", "sim"]])
def test_a_malformed_docker_host_is_one_line_and_exit_2(capsys, address: str, why: str,
                                                         command: list[str]) -> None:
    code, line = run_cli(capsys, "--docker-host", address, *command, "--container", "hF-any")
    assert code == UsageError.exit_code, line
    assert f"the Docker engine address {address!r} (from --docker-host" in line and "is malformed" in line, line
    assert why in line, line
    assert "sudo dockerd" not in line


def test_a_malformed_docker_host_variable_is_named_as_such(capsys, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://")
    code, line = run_cli(capsys, "info", "--container", "hF-any")
    assert code == UsageError.exit_code and "(from DOCKER_HOST)" in line, line


def test_a_unix_socket_that_does_not_exist_is_not_reachable(capsys, tmp_path) -> None:
    socket = tmp_path / "nope" / "docker.sock"
    code, line = run_cli(capsys, "--docker-host", f"unix://{socket}", "info", "--container", "hF-any")
    assert code == EngineUnavailableError.exit_code, line
    assert f"no socket at {socket}" in line and "check the socket's path" in line, line
    assert "sudo dockerd" not in line


def test_a_tcp_port_nobody_listens_on_is_not_reachable(capsys) -> None:
    code, line = run_cli(capsys, "--docker-host", "tcp://127.0.0.1:1", "info", "--container", "hF-any")
    assert code == EngineUnavailableError.exit_code, line
    assert "no Docker engine answers at tcp://127.0.0.1:1" in line and "sudo dockerd" not in line, line


def test_ssh_without_paramiko_says_what_to_install(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "paramiko", None)  # `import paramiko` fails, installed or not
    code, line = run_cli(capsys, "--docker-host", "ssh://someone@127.0.0.1", "info", "--container", "hF-any")
    assert code == EngineUnavailableError.exit_code, line
    assert "ssh:// needs paramiko" in line and "pip install 'xsched-ops[ssh]'" in line, line


def test_ssh_with_paramiko_uses_the_ssh_client_when_there_is_one(monkeypatch, tmp_path) -> None:
    pytest.importorskip("paramiko")
    assert engine.check_address("ssh://u@h", "x") in ({"use_ssh_client": True}, {})
    monkeypatch.setenv("PATH", str(tmp_path))  # no ssh client: paramiko's own connection
    assert engine.check_address("ssh://u@h", "x") == {}


@pytest.mark.parametrize("address", ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://[::1]:2376",
                                     "https://docker.example:2376", "http://h:1"])
def test_well_formed_addresses_pass_the_check(address: str) -> None:
    assert engine.check_address(address, "--docker-host") == {}


def test_the_default_socket_still_says_how_to_start_an_engine() -> None:
    assert "sudo dockerd" in engine._unreachable_hint(engine.DEFAULT_ADDRESS)
    assert "sudo dockerd" not in engine._unreachable_hint("unix:///run/other.sock")
    assert "ssh u@h docker version" in engine._unreachable_hint("ssh://u@h")


_address_parts = st.sampled_from(["unix://", "tcp://", "ssh://", "http://", "https://", "foo://", "/", ":", "@",
                                  "[", "]", "::1", "host", "user@", "2375", "-1", "99999", "%", " ", "\n", "é", ""])


@settings(max_examples=500, deadline=None)
@given(address=st.one_of(st.text(max_size=40), st.lists(_address_parts, max_size=8).map("".join)))
def test_fuzzed_addresses_are_accepted_or_one_line(address: str) -> None:
    try:
        options = engine.check_address(address, "--docker-host")
    except XSchedOpsError as err:
        assert err.exit_code in (UsageError.exit_code, EngineUnavailableError.exit_code)
        assert "\n" not in err.one_line()
    else:
        assert isinstance(options, dict)
