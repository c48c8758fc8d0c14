"""This host as a target, the archive safety rules and the retry policy: no Docker needed."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import docker.errors
import pytest
import requests

from xsched_ops.errors import UnsafeArchiveError
from xsched_ops.target.archive import safe_extract
from xsched_ops.target.base import EXEC_MARKER_VARIABLE
from xsched_ops.target.engine import ENGINE_ATTEMPTS, call_engine, is_transient
from xsched_ops.target.local import LocalTarget


def test_local_environment_is_verbatim() -> None:
    env = {"PATH": "/usr/bin:/bin", "TRICKY": "$HOME 'q' \"dq\"  spaces"}
    result = LocalTarget().exec(["cat", "/proc/self/environ"], env=env)
    seen = dict(entry.split("=", 1) for entry in result.stdout.rstrip("\n").split("\0") if entry)
    seen.pop(EXEC_MARKER_VARIABLE)
    assert seen == env


def test_local_streaming_and_exit_code() -> None:
    lines: list[str] = []
    result = LocalTarget().exec(
        ["sh", "-c", "seq 1 10000; exit 3"], on_line=lambda stream, line: lines.append(line) if stream == "stdout" else None
    )
    assert result.exit_code == 3
    assert lines == [str(i) for i in range(1, 10001)]


def test_local_timeout_kills_escaped_children() -> None:
    target = LocalTarget()
    # setsid puts the child in its own session, out of reach of a process-group kill;
    # the marker variable still finds it.
    result = target.exec(["sh", "-c", "setsid sleep 304 & sleep 305"], timeout=1)
    assert result.timed_out
    time.sleep(0.3)
    alive = LocalTarget().exec(["sh", "-c", "ps -eo stat=,args= | grep 'sleep 30[45]' | grep -v '^Z' || true"])
    assert alive.stdout.strip() == ""


def test_missing_program_is_exit_127() -> None:
    assert LocalTarget().exec(["/nonexistent/program"]).exit_code == 127


def test_local_copy_in_and_out(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "f.txt").write_text("x")
    target = LocalTarget()
    target.copy_in(source, str(tmp_path / "made" / "here"))
    assert (tmp_path / "made" / "here" / "sub" / "f.txt").read_text() == "x"
    out = target.copy_out(str(tmp_path / "made" / "here"), tmp_path / "back")
    assert (out / "sub" / "f.txt").read_text() == "x"


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data) if data else None)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (tarfile.TarInfo("../escaped.txt"), "leaves the destination"),
        (tarfile.TarInfo("/etc/absolute.txt"), "absolute path"),
    ],
)
def test_unsafe_members_are_refused(tmp_path: Path, member: tarfile.TarInfo, reason: str) -> None:
    with pytest.raises(UnsafeArchiveError, match=reason):
        safe_extract(_tar_with(member, b"data"), tmp_path / "dest", "test")
    assert not (tmp_path / "escaped.txt").exists()


def test_symlink_out_of_destination_is_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("folder/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../outside"
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(_tar_with(link), tmp_path / "dest", "test")


def _api_error(status: int) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("engine said no", response=response)


def test_transient_errors_are_5xx_and_connection_trouble_only() -> None:
    assert is_transient(_api_error(500))
    assert is_transient(_api_error(503))
    assert is_transient(requests.exceptions.ConnectionError("reset"))
    assert is_transient(BrokenPipeError(32, "Broken pipe"))  # the ssh:// transport's pipe
    assert not is_transient(FileNotFoundError("x"))
    assert not is_transient(_api_error(404))
    assert not is_transient(_api_error(409))
    assert not is_transient(ValueError("x"))


def test_retry_is_bounded_and_skips_client_errors() -> None:
    calls = {"server": 0, "client": 0}

    def server_failure() -> None:
        calls["server"] += 1
        raise _api_error(500)

    def client_failure() -> None:
        calls["client"] += 1
        raise _api_error(404)

    with pytest.raises(docker.errors.APIError):
        call_engine(server_failure)
    with pytest.raises(docker.errors.APIError):
        call_engine(client_failure)
    assert calls == {"server": ENGINE_ATTEMPTS, "client": 1}

    flaky = {"left": 2}

    def recovers() -> str:
        if flaky["left"]:
            flaky["left"] -= 1
            raise requests.exceptions.ConnectionError("connection reset by peer")
        return "ok"

    assert call_engine(recovers) == "ok"
