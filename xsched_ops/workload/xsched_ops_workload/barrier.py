"""A start barrier in a folder, shared by threads and processes.

Each role writes ``ready-<role>``; the last arriver (whoever first sees every ready file)
writes ``go`` holding t0 as wall-clock time, a little in the future so that every waiter reads
it before t0. ``stop`` ends closed-loop roles; ``abort`` tells waiters the run failed.
"""

from __future__ import annotations

import os
import time

from xsched_ops_workload.errors import BarrierAborted, WorkloadError

GO_LEAD_S = 0.25


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}.{time.monotonic_ns()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class FileBarrier:
    def __init__(self, folder: str, roles: list[str]) -> None:
        self.folder = folder
        self.roles = list(roles)
        os.makedirs(folder, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def reset(self) -> None:
        """Remove files of an earlier run (the launcher calls this before starting roles)."""
        for name in os.listdir(self.folder):
            if name.startswith(("ready-", "go", "stop", "abort")):
                try:
                    os.unlink(self._path(name))
                except FileNotFoundError:
                    pass

    def read_go(self) -> float | None:
        try:
            with open(self._path("go"), encoding="utf-8") as handle:
                return float(handle.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _try_open(self) -> None:
        if not all(os.path.exists(self._path(f"ready-{role}")) for role in self.roles):
            return
        try:
            fd = os.open(self._path("go.lock"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return
        os.close(fd)
        _write_atomic(self._path("go"), repr(time.time() + GO_LEAD_S))

    def arrive_and_wait(self, role: str, timeout_s: float) -> float:
        """Mark ``role`` ready and block until ``go``; returns t0 (wall clock, seconds since the epoch)."""
        _write_atomic(self._path(f"ready-{role}"), str(os.getpid()))
        deadline = time.monotonic() + timeout_s
        while True:
            t0 = self.read_go()
            if t0 is not None:
                return t0
            if self.aborted():
                raise BarrierAborted(f"start barrier aborted: {self.abort_reason()}")
            self._try_open()
            if time.monotonic() > deadline:
                missing = [r for r in self.roles if not os.path.exists(self._path(f"ready-{r}"))]
                raise WorkloadError(f"start barrier timed out after {timeout_s:.0f} s waiting for roles: {', '.join(missing)}")
            time.sleep(0.005)

    def request_stop(self) -> None:
        if not self.stop_requested():
            _write_atomic(self._path("stop"), repr(time.time()))

    def stop_requested(self) -> bool:
        return os.path.exists(self._path("stop"))

    def abort(self, reason: str) -> None:
        if not self.aborted():
            _write_atomic(self._path("abort"), reason)
        self.request_stop()

    def aborted(self) -> bool:
        return os.path.exists(self._path("abort"))

    def abort_reason(self) -> str:
        try:
            with open(self._path("abort"), encoding="utf-8") as handle:
                return handle.read().strip() or "unknown reason"
        except FileNotFoundError:
            return "unknown reason"


class RunClock:
    """Seconds relative to t0 on this process's monotonic clock, anchored once."""

    def __init__(self, t0_wall: float) -> None:
        self.t0_wall = t0_wall
        self._t0_mono = time.monotonic() - (time.time() - t0_wall)

    def now(self) -> float:
        return time.monotonic() - self._t0_mono

    def sleep_until(self, t: float) -> None:
        remaining = t - self.now()
        if remaining > 0:
            time.sleep(remaining)

    # The last stretch is spun rather than slept: time.sleep can overshoot by 50-100 us or more.
    SPIN_S = 0.0005

    def sleep_until_precise(self, t: float) -> None:
        remaining = t - self.now()
        if remaining > self.SPIN_S:
            time.sleep(remaining - self.SPIN_S)
        while self.now() < t:
            pass
