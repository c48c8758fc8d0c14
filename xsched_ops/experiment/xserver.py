"""The xserver's lifecycle in mode xsched: start in the background, poll readiness, stop.

The xserver runs as one target exec in a host thread (so its output is kept and its exit code
known); it carries the run's mark, so stopping it is a signal to the marked process, and a run
that dies leaves nothing behind. Readiness is a TCP connection from inside the target to the
port (the xserver answers one status line), polled, never slept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from xsched_ops.errors import RunFailedError
from xsched_ops.experiment.environments import RUN_MARK_VARIABLE
from xsched_ops.target.base import ExecResult, Target

# Connects once; prints the first line the listener sends and exits 0, or exits 1.
_PROBE = """
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1.0) as conn:
        conn.settimeout(1.0)
        try:
            print(conn.recv(200).decode(errors="replace").strip().splitlines()[0])
        except (OSError, IndexError):
            print("")
except OSError as err:
    sys.stderr.write("%s\\n" % err)
    sys.exit(1)
"""


def port_answers(target: Target, port: int, env: Mapping[str, str], python: str = "python3") -> tuple[bool, str]:
    """Whether something inside the target accepts a connection on ``port``, and its first line."""
    result = target.exec([python, "-c", _PROBE, str(port)], env=dict(env), timeout=30)
    if result.exit_code == 0:
        return True, result.stdout.strip()
    return False, result.stderr.strip()


class XServer:
    """``xserver POLICY PORT`` in the target, for the duration of one xsched trial."""

    def __init__(self, target: Target, path: str, policy: str, port: int, env: Mapping[str, str], mark: str,
                 python: str = "python3") -> None:
        self.target = target
        self.argv = [path, policy, str(port)]
        self.port = port
        self.env = {**env, RUN_MARK_VARIABLE: mark}
        self.mark = mark
        self.python = python
        self.lines: list[str] = []
        self.greeting = ""
        self._result: ExecResult | None = None
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _serve(self) -> None:
        try:
            self._result = self.target.exec(self.argv, env=self.env, on_line=self._on_line, capture=False)
        except BaseException as err:  # handed to start()/stop() in the caller's thread
            self._failure = err

    def _on_line(self, stream: str, line: str) -> None:
        self.lines.append(f"{stream}: {line}")

    def start(self, ready_timeout_s: float = 20.0) -> None:
        busy, who = port_answers(self.target, self.port, self.env, self.python)
        if busy:
            raise RunFailedError(
                f"port {self.port} in the target already answers ({who or 'no greeting'}) before the xserver "
                "of this run started",
                "stop the process that listens there (an xserver of an earlier run?), or set another port "
                "with --set xsched.xserver_port=PORT",
            )
        self._thread = threading.Thread(target=self._serve, name="xserver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + ready_timeout_s
        last = ""
        while time.monotonic() < deadline:
            if not self.running:
                output = "; ".join(self.lines[-5:]) or (str(self._failure) if self._failure else "no output")
                code = self._result.exit_code if self._result else "?"
                raise RunFailedError(f"the xserver ({' '.join(self.argv)}) exited with code {code} before it "
                                     f"answered on port {self.port}: {output}",
                                     "run `xsched-ops doctor` on the target")
            ready, last = port_answers(self.target, self.port, self.env, self.python)
            if ready:
                self.greeting = last
                return
            time.sleep(0.1)
        self.stop()
        raise RunFailedError(f"the xserver did not answer on port {self.port} within {ready_timeout_s:g} s "
                             f"({last})", "run `xsched-ops doctor` on the target")

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Stop the xserver (TERM, then KILL after ``grace_s``); its exit code when known."""
        from xsched_ops.experiment.processes import signal_marked

        if self._thread is None:
            return None
        if self.running:
            signal_marked(self.target, self.mark, "TERM")
            self._thread.join(grace_s)
        if self.running:
            signal_marked(self.target, self.mark, "KILL")
            self._thread.join(grace_s)
        return self._result.exit_code if self._result else None
