"""A container's files read through ``/proc/PID/root`` once its main process is gone (issue 15, part 5):
they must raise the target's "lost" error, never read as missing (the doctor would report an install
that vanished with the container as broken). A real process of this host plays the main process.
"""

from __future__ import annotations

import subprocess

import pytest

from xsched_ops.errors import ContainerNotRunningError
from xsched_ops.target.fs import ProcessRootFS


def _lost() -> ContainerNotRunningError:
    return ContainerNotRunningError("container 'x' stopped while xsched-ops worked in it", "start it")


def test_a_live_process_root_answers_missing_as_missing() -> None:
    process = subprocess.Popen(["sleep", "60"])
    try:
        fs = ProcessRootFS(process.pid, _lost)
        assert fs.isfile("/etc/hostname") or fs.exists("/etc")
        assert not fs.exists("/no/such/file")
        assert fs.realpath("/no/such/file") == "/no/such/file"
        with pytest.raises(FileNotFoundError):
            fs.open("/no/such/file")
    finally:
        process.kill()
        process.wait()


def test_once_the_process_is_gone_every_lookup_raises_the_lost_error() -> None:
    process = subprocess.Popen(["sleep", "60"])
    fs = ProcessRootFS(process.pid, _lost)
    assert fs.exists("/etc")
    process.kill()
    process.wait()
    for lookup in (lambda: fs.exists("/etc"), lambda: fs.isfile("/etc/hostname"), lambda: fs.isdir("/etc"),
                   lambda: fs.open("/etc/hostname"), lambda: fs.listdir("/etc"), lambda: fs.readlink("/etc/x"),
                   lambda: fs.lstat("/etc"), lambda: fs.realpath("/etc/hostname")):
        with pytest.raises(ContainerNotRunningError):
            lookup()
