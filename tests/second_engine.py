"""A second Docker engine for tests: its own dockerd, socket, data root and exec root.

Tests that restart or stop an engine must never touch the main one (other tests and people use
it). ``start_second_engine`` starts a dockerd of its own beside it, on a bridge of its own (an
``xo-XXXXXX`` interface made here, on a subnet of its own; no iptables rules, no masquerading, so
that it does not fight the main engine's network), with a socket ``/run/xsched-ops-test-NAME-XXXXXX.sock``
unique to the instance (test sessions may run at the same time), loads the sandbox image into it from the
main engine (``docker save | docker load``: the image is built by the main engine, see
``xsched_ops/sandbox/image.py``) and yields a ``SecondEngine`` whose ``url`` (``unix://...``) goes
to ``--docker-host``. At the end it stops the engine (its containers die with it) and removes its
folders. ``second_engine`` is the same as a pytest fixture of session scope.

Reusable for multi-engine sweeps: each ``start_second_engine()`` starts another one.

Never ``--bridge=none``: dockerd 20.10 then deletes the interface ``docker0``, the main engine's.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


@dataclass
class SecondEngine:
    """A dockerd started by the tests; ``url`` is its ``unix://`` address."""

    name: str
    socket: Path
    data_root: Path
    exec_root: Path
    pidfile: Path
    log: Path
    bridge: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def docker(self, *argv: str, check: bool = True, timeout: float = 120,
               **kwargs: object) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this engine."""
        return subprocess.run(["docker", "--host", self.url, *argv], capture_output=True, text=True, check=check,
                              timeout=timeout, **kwargs)  # type: ignore[call-overload]

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"engine {self.name} already runs (pid {self.process.pid})")
        argv = [
            "dockerd",
            "--host", self.url,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "--config-file", str(self._empty_config()),
            # Not --bridge=none: dockerd 20.10 then deletes the interface docker0, the main engine's.
            f"--bridge={self.bridge}", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
        ]
        with open(self.log, "ab") as log:
            # A session of its own: a Ctrl-C meant for the tests does not reach it.
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd {self.name} did not answer within {START_TIMEOUT_S:g} s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM to this dockerd (only it: by its pid), SIGKILL after ``STOP_TIMEOUT_S``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _empty_config(self) -> Path:
        # Not /etc/docker/daemon.json: settings of the main engine (hosts, bridge) must not apply.
        path = self.data_root.parent / "daemon.json"
        if not path.exists():
            path.write_text("{}\n")
        return path

    # -- images -------------------------------------------------------------------------------
    def load_image_from_main(self, tag: str) -> None:
        """``docker save TAG | docker --host THIS load``: the main engine's image, here."""
        if self.docker("image", "inspect", tag, check=False).returncode == 0:
            return
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE, env=_main_engine_env())
        try:
            load = subprocess.run(["docker", "--host", self.url, "load", "--quiet"], stdin=save.stdout,
                                  capture_output=True, text=True, timeout=600)
        finally:
            assert save.stdout is not None
            save.stdout.close()
            save.wait(600)
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(f"loading {tag} into engine {self.name} failed: {load.stderr.strip()}")


def _main_engine_env() -> dict[str, str]:
    environment = dict(os.environ)
    environment.pop("DOCKER_HOST", None)
    return environment


def _remove_tree(path: Path) -> None:
    # An engine killed hard can leave overlay mounts below its data root: unmount before removing.
    prefix = str(path.resolve()) + "/"
    try:
        with open("/proc/mounts") as mounts:
            points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    except OSError:
        points = []
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


def _make_bridge(bridge: str) -> str:
    """A bridge interface ``bridge`` (at most 15 characters) of the engine's own, on a /24 no interface uses yet."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    thirds = list(range(200, 250))
    random.shuffle(thirds)  # two sessions making bridges at once rarely try the same subnet
    for third in thirds:
        subnet = f"10.231.{third}"
        if f"{subnet}." not in routes:
            break
    else:
        raise RuntimeError("no free 10.231.x.0/24 subnet for the second engine's bridge")
    for argv in (["ip", "link", "add", bridge, "type", "bridge"],
                 ["ip", "addr", "add", f"{subnet}.1/24", "dev", bridge],
                 ["ip", "link", "set", bridge, "up"]):
        completed = subprocess.run(argv, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
            raise RuntimeError(f"{' '.join(argv)} failed: {completed.stderr.strip()}")
    return bridge


@contextlib.contextmanager
def start_second_engine(image: str | None = None, name: str = "engine2") -> Iterator[SecondEngine]:
    """Start a second dockerd, load ``image`` from the main engine into it, stop and remove it at the end."""
    if shutil.which("dockerd") is None:
        raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise RuntimeError("a second dockerd needs root")
    base = Path(tempfile.mkdtemp(prefix=f"xsched-ops-{name}-", dir="/var/tmp"))
    # The exec root holds containerd's sockets, whose paths must stay short (108 bytes).
    exec_root = Path(tempfile.mkdtemp(prefix=f"xo-{name}-", dir="/run"))
    # Socket and bridge unique to this instance: several test sessions may run engines at once.
    token = uuid.uuid4().hex[:6]
    bridge = _make_bridge(f"xo-{token}")
    engine = SecondEngine(
        name=name,
        bridge=bridge,
        socket=Path(f"/run/xsched-ops-test-{name}-{token}.sock"),
        data_root=base / "data",
        exec_root=exec_root,
        pidfile=base / "dockerd.pid",
        log=base / "dockerd.log",
    )
    engine.data_root.mkdir()
    try:
        engine.start()
        if image is not None:
            engine.load_image_from_main(image)
        yield engine
    finally:
        engine.stop()
        with contextlib.suppress(OSError):
            engine.socket.unlink()
        _remove_tree(exec_root)
        _remove_tree(base)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)


@pytest.fixture(scope="session")
def second_engine(sandbox_image: str) -> Iterator[SecondEngine]:
    """A second engine holding the sandbox image (see ``start_second_engine``)."""
    try:
        with start_second_engine(sandbox_image) as engine:
            yield engine
    except RuntimeError as err:
        pytest.fail(f"the second engine could not be started: {err}")
