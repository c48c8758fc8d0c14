"""The xserver while a trial's workload runs: its answers kept, its death ends the trial."""

from __future__ import annotations

import threading
import time

from xsched_ops.errors import XSchedOpsError
from xsched_ops.experiment.processes import end_marked
from xsched_ops.experiment.xserver import XServer
from xsched_ops.target.base import Target


class XServerWatch:
    """While a trial's workload runs: keep the xserver's ``GET /xqueues`` answers, and end the trial
    at once when the xserver dies (its GLB clients would hang: XSCHED-FACTS.md section 1)."""

    POLL_S = 0.5
    SNAPSHOT_EVERY_S = 10.0  # each is an exec in the target: few, the log is the main evidence

    def __init__(self, target: Target, mark: str, xserver: XServer | None) -> None:
        self.target = target
        self.mark = mark
        self.xserver = xserver
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        assert self.xserver is not None
        next_snapshot = time.monotonic() + 3.0
        while not self._done.wait(self.POLL_S):
            if self.xserver.died:
                try:
                    end_marked(self.target, self.mark)  # the launcher and its roles
                except XSchedOpsError:
                    pass
                return
            if time.monotonic() >= next_snapshot:
                try:
                    self.xserver.snapshot_xqueues()
                except XSchedOpsError:
                    pass
                next_snapshot = time.monotonic() + self.SNAPSHOT_EVERY_S

    def __enter__(self) -> XServerWatch:
        if self.xserver is not None:
            self._thread = threading.Thread(target=self._watch, name="xserver-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(10)
