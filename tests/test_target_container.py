"""The container target against a real Docker engine and a real container."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from xsched_ops.cli import invoke
from xsched_ops.errors import ContainerNotFoundError, ContainerNotRunningError, UnsafeArchiveError
from xsched_ops.target.base import EXEC_MARKER_VARIABLE
from xsched_ops.target.container import ContainerTarget

pytestmark = pytest.mark.docker


def _environ_of(result_stdout: str) -> dict[str, str]:
    entries = [entry for entry in result_stdout.rstrip("\n").split("\0") if entry]
    return dict(entry.split("=", 1) for entry in entries)


def test_environment_arrives_verbatim_and_replaces_the_configured_one(scratch_container: ContainerTarget) -> None:
    tricky = "$HOME and ${PATH} 'single' \"double\" `date` $(id)  two  spaces"
    env = {"PATH": "/usr/bin:/bin", "TRICKY": tricky, "EMPTY": ""}
    result = scratch_container.exec(["cat", "/proc/self/environ"], env=env)
    assert result.exit_code == 0, result.stderr
    seen = _environ_of(result.stdout)
    marker = seen.pop(EXEC_MARKER_VARIABLE)
    assert marker
    assert seen == env  # the container's own LD_LIBRARY_PATH is gone, nothing was expanded


def test_default_environment_is_the_containers_configured_env(scratch_container: ContainerTarget) -> None:
    configured = scratch_container.environment()
    assert configured["LD_LIBRARY_PATH"] == "/stale/lib"
    result = scratch_container.exec(["cat", "/proc/self/environ"])
    assert _environ_of(result.stdout)["LD_LIBRARY_PATH"] == "/stale/lib"


def test_streams_ten_thousand_lines_and_returns_the_exit_code(scratch_container: ContainerTarget) -> None:
    seen: list[tuple[str, str]] = []
    result = scratch_container.exec(
        ["sh", "-c", "i=1; while [ $i -le 10000 ]; do echo line $i; i=$((i+1)); done; echo done >&2; exit 3"],
        on_line=lambda stream, line: seen.append((stream, line)),
    )
    assert result.exit_code == 3
    stdout_lines = [line for stream, line in seen if stream == "stdout"]
    assert stdout_lines == [f"line {i}" for i in range(1, 10001)]
    assert ("stderr", "done") in seen
    assert len(result.stdout.splitlines()) == 10000


def test_working_directory_is_honoured(scratch_container: ContainerTarget) -> None:
    result = scratch_container.exec(["pwd"], cwd="/usr/lib")
    assert result.stdout.strip() == "/usr/lib"


def test_timeout_kills_every_process_inside_the_container(scratch_container: ContainerTarget) -> None:
    started = time.monotonic()
    # A child in the background and one in the foreground: both must die.
    result = scratch_container.exec(["sh", "-c", "sleep 301 & sleep 302; echo never"], timeout=2)
    assert result.timed_out
    assert not result.ok
    assert time.monotonic() - started < 15
    processes = scratch_container.exec(["ps", "-eo", "stat=,args="]).stdout.splitlines()
    alive = [line for line in processes if "sleep 30" in line and not line.strip().startswith("Z")]
    assert alive == []


def test_keyboard_interrupt_kills_inside_the_container(scratch_container: ContainerTarget) -> None:
    import _thread
    import threading

    threading.Timer(1.5, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        scratch_container.exec(["sleep", "303"])
    processes = scratch_container.exec(["ps", "-eo", "stat=,args="]).stdout.splitlines()
    assert [line for line in processes if "sleep 303" in line and not line.strip().startswith("Z")] == []


def test_large_file_round_trip_keeps_its_hash(scratch_container: ContainerTarget, tmp_path: Path) -> None:
    original = tmp_path / "payload.bin"
    original.write_bytes(os.urandom(50 * 1024 * 1024))
    scratch_container.copy_in(original, "/tmp/deep/new/folder/payload.bin")
    inside = scratch_container.exec(["sha256sum", "/tmp/deep/new/folder/payload.bin"]).stdout.split()[0]
    expected = hashlib.sha256(original.read_bytes()).hexdigest()
    assert inside == expected
    copied = scratch_container.copy_out("/tmp/deep/new/folder/payload.bin", tmp_path / "back")
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == expected


def test_folder_round_trip(scratch_container: ContainerTarget, tmp_path: Path) -> None:
    source = tmp_path / "tree"
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "b" / "file.txt").write_text("hello")
    (source / "top.txt").write_text("top")
    scratch_container.copy_in(source, "/opt/xo/tree")
    names = [entry.name for entry in scratch_container.list_dir("/opt/xo/tree")]
    assert names == ["a", "top.txt"]
    assert scratch_container.read_file("/opt/xo/tree/a/b/file.txt") == b"hello"
    copied = scratch_container.copy_out("/opt/xo/tree", tmp_path / "out")
    assert (copied / "a" / "b" / "file.txt").read_text() == "hello"


def test_archive_member_leaving_the_destination_is_refused(scratch_container: ContainerTarget, tmp_path: Path) -> None:
    scratch_container.exec(["sh", "-c", "mkdir -p /tmp/evil && echo x > /tmp/evil/ok && ln -sf /etc/passwd /tmp/evil/link"])
    destination = tmp_path / "dest"
    with pytest.raises(UnsafeArchiveError, match="link"):
        scratch_container.copy_out("/tmp/evil", destination)
    assert not (destination / "evil").exists()


def test_unknown_container_is_named_and_not_retried(scratch_container: ContainerTarget) -> None:
    started = time.monotonic()
    with pytest.raises(ContainerNotFoundError) as caught:
        ContainerTarget.open("no-such-container-xo")
    assert "no-such-container-xo" in caught.value.one_line()
    assert scratch_container.name in caught.value.one_line()  # lists the running ones
    assert time.monotonic() - started < 5


def test_cli_wrong_container_prints_one_line_without_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    code = invoke(["info", "--container", "no-such-container-xo"])
    captured = capfd.readouterr()
    assert code == ContainerNotFoundError.exit_code
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "no-such-container-xo" in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_stopped_container_gets_the_start_hint(stopped_container_name: str) -> None:
    with pytest.raises(ContainerNotRunningError) as caught:
        ContainerTarget.open(stopped_container_name)
    assert f"docker start {stopped_container_name}" in caught.value.one_line()


def test_no_engine_says_how_to_start_one(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = invoke(["--docker-host", f"unix://{tmp_path}/none.sock", "info", "--container", "x"])
    err = capfd.readouterr().err
    assert code == 10
    assert "dockerd" in err and "Traceback" not in err
