"""The xserver's lifecycle for one xsched trial (or one verification): start, poll, watch, stop.

As XSched 1.2 really behaves (XSCHED-FACTS.md sections 2-4):
- only one xserver may run per IPC namespace (a second one silently takes over the first's
  queue), so starting is refused when an xserver already runs in the target, on any port, or
  when the port answers;
- it sends no greeting: readiness is ``GET /policy`` answering on its port, polled, never slept;
- it stops cleanly (exit 0, its message queue removed) on SIGINT or SIGQUIT; SIGTERM and SIGKILL
  leave the queue behind. ``stop`` sends SIGINT, then SIGQUIT, then SIGKILL after grace periods,
  and records which one ended it;
- if it dies while clients run they hang: ``died`` tells the orchestrator to end the trial.

The xserver runs as one target exec in a host thread (its log is kept, its exit code known). It
carries the run's mark (so a run that dies leaves nothing behind) and its own mark, so that its
signals reach it alone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping

from xsched_ops.environment.roles import RUN_MARK_VARIABLE
from xsched_ops.errors import RunFailedError
from xsched_ops.results.models import SchedulerView
from xsched_ops.results.scheduler_view import scheduler_view
from xsched_ops.target.base import ExecResult, Target
from xsched_ops.xsched.ipc_state import inspect as inspect_ipc

XSERVER_MARK_VARIABLE = "XSCHEDOPS_XSERVER_MARK"

# One HTTP GET to 127.0.0.1:PORT inside the target: prints the status and the body, exits 0; or
# exits 1 when nothing answers (2 when something answers but not as HTTP).
_HTTP_GET = """
import http.client, socket, sys
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=2.0)
try:
    connection.request("GET", sys.argv[2])
    response = connection.getresponse()
    sys.stdout.write("%d\\n" % response.status)
    sys.stdout.write(response.read(4 << 20).decode(errors="replace"))
except http.client.HTTPException as err:
    sys.stderr.write("answers, but not HTTP: %r\\n" % err)
    sys.exit(2)
except OSError as err:
    sys.stderr.write("%s\\n" % err)
    sys.exit(1)
"""

STOP_SIGNALS = ("INT", "QUIT", "KILL")


def http_get(target: Target, port: int, path: str, env: Mapping[str, str], python: str = "python3"
             ) -> tuple[int | None, str]:
    """``(status, body)`` of ``GET path`` on the target's port; status None when nothing answers (body: why)."""
    result = target.exec([python, "-c", _HTTP_GET, str(port), path], env=dict(env), timeout=30)
    if result.exit_code == 0:
        status, _, body = result.stdout.partition("\n")
        return (int(status) if status.isdigit() else None), body
    if result.exit_code == 2:
        return 0, result.stderr.strip()
    return None, result.stderr.strip()


def refuse_if_xserver_runs(target: Target, python: str = "python3") -> None:
    """One line when an xserver already runs in the target (on any port)."""
    state = inspect_ipc(target, python)
    if state.xservers:
        other = state.xservers[0]
        raise RunFailedError(
            f"an xserver already runs in the target (pid {other['pid']}: {' '.join(other['argv'])}); a second "
            "one would take over its message queue and both would schedule",
            f"stop it first (kill -INT {other['pid']} in the target), then run again",
        )


class XServer:
    """``xserver POLICY PORT`` in the target."""

    def __init__(self, target: Target, path: str, policy: str, port: int, env: Mapping[str, str], mark: str,
                 python: str = "python3") -> None:
        self.target = target
        self.argv = [path, policy, str(port)]
        self.policy = policy
        self.port = port
        self.own_marker = f"{XSERVER_MARK_VARIABLE}={mark}"
        self.env = {**env, RUN_MARK_VARIABLE: mark, XSERVER_MARK_VARIABLE: mark}
        self.python = python
        self.lines: list[str] = []
        self.policy_answer = ""
        self.xqueues_snapshots: list[dict] = []
        self.ended_by: str | None = None  # the signal that ended it, when we stopped it
        self._stopping = False
        self._died_by_itself = False
        self._result: ExecResult | None = None
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def died(self) -> bool:
        """It ended by itself (not stopped by us) after it had started."""
        return self._died_by_itself or (self._thread is not None and not self.running and not self._stopping)

    @property
    def exit_code(self) -> int | None:
        return self._result.exit_code if self._result else None

    def _serve(self) -> None:
        try:
            self._result = self.target.exec(self.argv, env=self.env, on_line=self._on_line, capture=False)
        except BaseException as err:  # handed to start()/stop() in the caller's thread
            self._failure = err

    def _on_line(self, stream: str, line: str) -> None:
        self.lines.append(f"{stream}: {line}")

    def refuse_if_busy(self) -> None:
        """Refuse (one line) when an xserver already runs in the target or the port answers."""
        refuse_if_xserver_runs(self.target, self.python)
        status, body = http_get(self.target, self.port, "/policy", self.env, self.python)
        if status is not None:
            raise RunFailedError(
                f"port {self.port} in the target already answers ({'HTTP ' + str(status) if status else body}) "
                "before the xserver of this run started",
                "stop the process that listens there, or set another port with --set xsched.xserver_port=PORT",
            )

    def start(self, ready_timeout_s: float = 20.0) -> None:
        self.refuse_if_busy()
        self._thread = threading.Thread(target=self._serve, name="xserver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + ready_timeout_s
        last = ""
        while time.monotonic() < deadline:
            if not self.running:
                output = "; ".join(self.lines[-5:]) or (str(self._failure) if self._failure else "no output")
                raise RunFailedError(f"the xserver ({' '.join(self.argv)}) exited with code {self.exit_code} before "
                                     f"it answered on port {self.port}: {output}",
                                     "run `xsched-ops doctor` on the target")
            status, last = http_get(self.target, self.port, "/policy", self.env, self.python)
            if status == 200:
                self.policy_answer = last.strip()
                return
            time.sleep(0.1)
        self.stop()
        raise RunFailedError(f"the xserver did not answer GET /policy on port {self.port} within "
                             f"{ready_timeout_s:g} s ({last})", "run `xsched-ops doctor` on the target")

    def snapshot_xqueues(self) -> None:
        """Keep the xserver's current ``GET /xqueues`` answer (nothing when it does not answer)."""
        if not self.running:
            return
        status, body = http_get(self.target, self.port, "/xqueues", self.env, self.python)
        if status == 200:
            try:
                document = json.loads(body)
            except ValueError:
                return
            if isinstance(document, dict) and (document.get("processes") or document.get("xqueues")):
                self.xqueues_snapshots.append(document)

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGINT, then SIGQUIT, then SIGKILL, ``grace_s`` apart; its exit code when known."""
        if self._thread is None:
            return None
        self._died_by_itself = self.died
        self._stopping = True
        for signal_name in STOP_SIGNALS:
            if not self.running:
                break
            self.target.signal_marked(self.own_marker, signal_name)
            self._thread.join(grace_s)
            if not self.running:
                self.ended_by = f"SIG{signal_name}"
        return self.exit_code

    def end_description(self) -> str:
        code = f"exit code {self.exit_code}" if self.exit_code is not None else "exit code unknown"
        if self.ended_by:
            return f"{self.ended_by} ({code})"
        return f"died by itself ({code})" if self._thread is not None else "never started"

    def view(self) -> SchedulerView:
        """What the scheduler saw: its log and the ``GET /xqueues`` answers kept meanwhile."""
        return scheduler_view(self.lines, self.xqueues_snapshots, xserver_end=self.end_description(),
                              xserver_died=self.died)
