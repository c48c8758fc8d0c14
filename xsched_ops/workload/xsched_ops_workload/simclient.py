"""The client side of the simulated device: one queue (a stream) a role submits kernels to.

Protocol: see ``simdevice``. Standard library only: this runs inside the target.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

from xsched_ops_workload import evidence as evidence_mod
from xsched_ops_workload.errors import WorkloadError


class SimQueueClient:
    """One queue (a stream) on the simulated device; thread-safe, shareable by roles (shared-stream)."""

    def __init__(self, socket_path: str, role: str, stream_priority: int = 0, connect_timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + connect_timeout_s
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(socket_path)
                break
            except OSError as err:
                sock.close()
                if time.monotonic() > deadline:
                    raise WorkloadError(f"simulated device at {socket_path} does not answer ({err.strerror})") from err
                time.sleep(0.05)
        self.sock = sock
        self._reader = sock.makefile("rb")
        self._send_lock = threading.Lock()
        self._waiters: dict[int, threading.Event] = {}
        self._waiters_lock = threading.Lock()
        self._next_id = 1
        self._closed_reason: str | None = None
        self._send({"op": "register", "role": role, "pid": os.getpid(), "stream_priority": stream_priority,
                    "evidence": evidence_mod.collect_self()})
        reply = json.loads(self._reader.readline() or b"{}")
        if reply.get("op") != "registered":
            raise WorkloadError(f"simulated device refused the registration: {reply}")
        self.decision: dict = reply["decision"]
        threading.Thread(target=self._read_replies, name=f"sim-client-{role}", daemon=True).start()

    def _send(self, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        with self._send_lock:
            self.sock.sendall(data)

    def _read_replies(self) -> None:
        try:
            for line in self._reader:
                message = json.loads(line)
                if message.get("op") == "done":
                    with self._waiters_lock:
                        event = self._waiters.pop(int(message["id"]), None)
                    if event is not None:
                        event.set()
        except (OSError, ValueError):
            pass
        self._closed_reason = "the simulated device closed the connection"
        with self._waiters_lock:
            for event in self._waiters.values():
                event.set()
            self._waiters.clear()

    def run(self, kernels_s: list[float]) -> None:
        """Submit kernels (asynchronously, as a runtime does) and wait until the last one finished."""
        if self._closed_reason:
            raise WorkloadError(self._closed_reason)
        event = threading.Event()
        with self._waiters_lock:
            request_id = self._next_id
            self._next_id += 1
            self._waiters[request_id] = event
        try:
            self._send({"op": "run", "id": request_id, "kernels_s": kernels_s})
        except OSError as err:
            raise WorkloadError(f"simulated device connection lost ({err.strerror})") from err
        event.wait()
        if self._closed_reason:
            raise WorkloadError(self._closed_reason)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
