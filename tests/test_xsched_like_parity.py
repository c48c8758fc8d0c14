"""The XSched-like install behaves as real XSched 1.2 did (../shared/XSCHED-FACTS.md), on this host.

Every test runs its processes in an IPC namespace of its own (``unshare --ipc``, then
``nsenter``), so the xserver's SysV queue (key 0x1) never meets the host's or another test's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from xsched_ops.sandbox import install

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("nsenter") is None,
                                reason="needs util-linux unshare/nsenter")

ASSERTION = "Assertion failed: failed to send event to server"


@pytest.fixture(scope="module")
def build() -> install.InstallBuild:
    return install.ensure_install()


class Namespace:
    """A process holding a fresh IPC namespace; ``popen``/``run`` start commands inside it."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--ipc", "sleep", "600"])
        deadline = time.monotonic() + 10
        own = os.readlink("/proc/self/ns/ipc")
        while os.readlink(f"/proc/{self.holder.pid}/ns/ipc") == own:
            assert time.monotonic() < deadline, "unshare did not enter a new IPC namespace"
            time.sleep(0.02)

    def argv(self, argv: list[str], env: dict[str, str] | None) -> list[str]:
        # The environment is applied inside (env -i), so that nsenter itself runs without the shim.
        settings = [f"{key}={value}" for key, value in (env or {"PATH": os.environ["PATH"]}).items()]
        return ["nsenter", "--ipc", "--target", str(self.holder.pid), "--", "env", "-i", *settings, *argv]

    def popen(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        # Started by Python, SIGINT is not ignored (as under docker exec; XSCHED-FACTS.md section 4).
        return subprocess.Popen(self.argv(argv, env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(argv, env), capture_output=True, text=True, timeout=timeout, check=False)

    def queues(self) -> dict[int, int]:
        """key -> number of messages of every SysV message queue in the namespace."""
        text = self.run(["cat", "/proc/sysvipc/msg"]).stdout.splitlines()[1:]
        return {int(line.split()[0]): int(line.split()[4]) for line in text if line.strip()}

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    space = Namespace()
    try:
        yield space
    finally:
        space.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def wait_until(what: str, condition: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def start_xserver(space: Namespace, build: install.InstallBuild, port: int) -> subprocess.Popen:
    server = space.popen([str(build.install / "bin" / "xserver"), "HPF", str(port)])
    wait_until("the xserver's port", lambda: http_get(port, "/policy")[0] == 200)
    return server


def client_env(build: install.InstallBuild, **settings: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_PRELOAD": str(build.install / "lib/libshimhip.so"),
            "LD_LIBRARY_PATH": str(build.install / "lib"), **settings}


# A client: the shim preloaded, hipInit called (the default stream's XQueue), then it waits
# for a file to appear (or ends at once when none is named).
CLIENT = """
import ctypes, os, sys, time
print("init", ctypes.CDLL(None).hipInit(0), flush=True)
while len(sys.argv) > 1 and not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
"""


def test_glb_client_without_xserver_dies_with_the_assertion(namespace: Namespace,
                                                            build: install.InstallBuild) -> None:
    result = namespace.run([sys.executable, "-c", CLIENT], env=client_env(build, XSCHED_SCHEDULER="GLB"))
    assert result.returncode == 1
    assert "using global scheduler" in result.stderr
    assert ASSERTION in result.stderr and "global.cpp:54" in result.stderr
    assert "init" not in result.stdout  # it died as the shim initialised, before main


def test_glb_client_with_stale_server_queue_runs_unscheduled(namespace: Namespace,
                                                             build: install.InstallBuild) -> None:
    port = free_port()
    server = start_xserver(namespace, build, port)
    server.send_signal(signal.SIGKILL)  # leaves the queue of key 0x1 behind
    server.wait()
    assert 1 in namespace.queues()
    env = client_env(build, XSCHED_SCHEDULER="GLB", XSCHED_AUTO_XQUEUE="ON")
    for _ in range(3):
        result = namespace.run([sys.executable, "-c", CLIENT], env=env)
        assert result.returncode == 0, result.stderr
        assert "ERRO" not in result.stderr and "server" not in result.stderr  # nothing says so
    assert namespace.queues()[1] >= 9  # connect, xqueue-create, close of each client, unread


@pytest.mark.parametrize(("settings", "line"), [
    ({}, "using app-managed scheduler"),
    ({"XSCHED_POLICY": "GBL"}, "using app-managed scheduler"),
    ({"XSCHED_SCHEDULER": "LCL"}, "using app-managed scheduler"),
    ({"XSCHED_POLICY": "HPF", "XSCHED_SCHEDULER": "GLB"}, "using local scheduler with policy HPF"),
])
def test_startup_line_and_fall_throughs(namespace: Namespace, build: install.InstallBuild,
                                        settings: dict[str, str], line: str) -> None:
    result = namespace.run([sys.executable, "-c", CLIENT],
                           env=client_env(build, XSCHED_AUTO_XQUEUE="ON", **settings))
    assert result.returncode == 0, result.stderr
    assert line in result.stderr
    local = "XQueue (" in result.stderr and "created" in result.stderr
    assert local == ("XSCHED_POLICY" in settings and settings["XSCHED_POLICY"] == "HPF")
    assert namespace.queues() == {}  # nobody connected anywhere


def test_out_of_range_level_warns_and_creates_no_xqueue(namespace: Namespace, build: install.InstallBuild) -> None:
    port = free_port()
    server = start_xserver(namespace, build, port)
    try:
        result = namespace.run([sys.executable, "-c", CLIENT], env=client_env(
            build, XSCHED_SCHEDULER="GLB", XSCHED_AUTO_XQUEUE="ON", XSCHED_AUTO_XQUEUE_LEVEL="7"))
        assert result.returncode == 0
        assert "fail to auto-create XQueue (level-7) for HwQueue 0x" in result.stderr
        assert "err: 2" in result.stderr
    finally:
        server.send_signal(signal.SIGINT)
        _, log = server.communicate(timeout=10)
    assert "connected" in log and "XQueue (" not in log


def test_xserver_log_http_and_clean_sigint(namespace: Namespace, build: install.InstallBuild,
                                           tmp_path: Path) -> None:
    port = free_port()
    server = start_xserver(namespace, build, port)
    go = tmp_path / "go"
    client = namespace.popen([sys.executable, "-c", CLIENT, str(go)], env=client_env(
        build, XSCHED_SCHEDULER="GLB", XSCHED_AUTO_XQUEUE="ON", XSCHED_AUTO_XQUEUE_PRIORITY="1",
        XSCHED_AUTO_XQUEUE_THRESHOLD="4", XSCHED_AUTO_XQUEUE_BATCH_SIZE="2"))
    try:
        wait_until("the client's XQueue", lambda: json.loads(http_get(port, "/xqueues")[1])["xqueues"])
        document = json.loads(http_get(port, "/xqueues")[1])
        assert [process["pid"] for process in document["processes"]] == [client.pid] or \
            len(document["processes"]) == 1  # nsenter execs the client: same pid
        queue = document["xqueues"][0]
        assert (queue["priority"], queue["level"], queue["threshold"], queue["batch_size"]) == (1, 1, 4, 2)
        assert http_get(port, "/policy") == (200, '{"policy" : 1}')
        assert http_get(port, "/nothing")[0] == 404
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:  # no greeting
            connection.settimeout(0.5)
            with pytest.raises(TimeoutError):
                connection.recv(10)
        pid = queue["pid"]
        assert pid in namespace.queues()  # the client holds a queue keyed by its pid
    finally:
        go.touch()
        client.wait(timeout=10)
    wait_until("the client closed", lambda: not json.loads(http_get(port, "/xqueues")[1])["processes"])
    server.send_signal(signal.SIGINT)
    _, log = server.communicate(timeout=10)
    assert server.returncode == 0
    assert namespace.queues() == {}  # its own queue removed; the client removed its own
    assert "scheduler created with policy HPF" in log
    assert f"client process {pid} connected, cmdline: " in log
    assert f"from process {pid} created" in log and "set priority 1 for XQueue 0x" in log
    assert f"client process {pid} closed" in log


@pytest.mark.parametrize(("stop_signal", "exit_code", "queue_left"), [
    (signal.SIGQUIT, 0, False), (signal.SIGTERM, -signal.SIGTERM, True), (signal.SIGKILL, -signal.SIGKILL, True),
])
def test_xserver_stop_signals(namespace: Namespace, build: install.InstallBuild, stop_signal: int,
                              exit_code: int, queue_left: bool) -> None:
    server = start_xserver(namespace, build, free_port())
    server.send_signal(stop_signal)  # nsenter and env exec into the xserver: same pid
    server.wait(timeout=10)
    assert server.returncode == exit_code
    assert (1 in namespace.queues()) == queue_left


def test_second_xserver_takes_over_the_queue(namespace: Namespace, build: install.InstallBuild) -> None:
    first = start_xserver(namespace, build, free_port())
    second = start_xserver(namespace, build, free_port())
    try:
        assert first.poll() is None and second.poll() is None  # both keep running
    finally:
        for server in (second, first):
            server.send_signal(signal.SIGINT)
    _, second_log = second.communicate(timeout=10)
    first.communicate(timeout=10)
    assert "kReceiver of Node 'key-1' (key: 0x1) already exists, removing the stale queue" in second_log
    assert "[IPC INFO @ T" in second_log


def test_cuda_lib_at_the_shim_dies_of_sigsegv_without_a_message(namespace: Namespace,
                                                                 build: install.InstallBuild) -> None:
    lib = build.root / "install-cuda" / "lib"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_LIBRARY_PATH": str(lib),
           "XSCHED_CUDA_LIB": str(lib / "libcuda.so.1")}
    script = "import ctypes; ctypes.CDLL('libcuda.so.1').cuInit(0); print('returned')"
    result = namespace.run([sys.executable, "-c", script], env=env)
    assert result.returncode in (-signal.SIGSEGV, 128 + signal.SIGSEGV)
    assert "returned" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [line for line in lines if "using app-managed scheduler" in line], result.stderr


def test_missing_cuda_lib_variable_warns_and_searches_the_folders(namespace: Namespace,
                                                                   build: install.InstallBuild) -> None:
    lib = build.root / "install-cuda" / "lib"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_LIBRARY_PATH": str(lib),
           "XSCHED_CUDA_LIB": "/nonexistent/libcuda.so.1"}
    script = "import ctypes; print('returned', ctypes.CDLL('libcuda.so.1').cuInit(0))"
    result = namespace.run([sys.executable, "-c", script], env=env)
    assert result.returncode == 0, result.stderr
    assert ("lib set by env XSCHED_CUDA_LIB = /nonexistent/libcuda.so.1 not found, fallback to dir search"
            in result.stderr)
