"""The simulated accelerator: one device server process (the client each role uses is ``simclient``).

The device has ONE hardware queue served in FIFO order: a kernel is a sleep of the duration
from the profile's kernel table. A role's queue gets XSched semantics (XSched level 1: at most
THRESHOLD kernels of a queue in flight on the hardware, refilled BATCH_SIZE at a time; the
highest priority queue with work runs, lower ones are held back at kernel boundaries) only when
the evidence about the process behind the connection (its pid from SO_PEERCRED) says XSched 1.2
would schedule it (see ``xsched_decision.decide_xsched``):
- a ``libshim*.so`` mapped in /proc/PID/maps (else: native queue);
- the scheduler XSched really creates from /proc/PID/environ (``effective_scheduler``): a valid
  ``XSCHED_POLICY`` gives a local scheduler (priorities only among queues of that process), else
  ``XSCHED_SCHEDULER=GLB`` the global one, anything else the app-managed one (nothing scheduled);
- local: ``XSCHED_AUTO_XQUEUE=ON`` and a level XSched accepts, the knobs from the environment;
- global: the xserver's own view, ``GET /xqueues`` on its port: the queue is scheduled only if the
  xserver lists XQueues of that pid, with the priority, threshold and batch size the xserver has.
Nothing the orchestrator says about a "mode" enters the decision. When /proc of the peer cannot
be read, the evidence the role reported is used and the decision says so.

While a queue under the global scheduler exists, a watcher checks every 0.5 s that the xserver
still answers. Once it does not, the device logs ``xserver_lost`` and never dispatches kernels of
those queues again: as with real XSched, a client of a dead xserver hangs (the orchestrator ends
the trial). Native and local queues keep running.

Queues registered with ``stream_priority`` > 0 (the ``priority-streams`` placement: native
stream priorities) are picked first among kernels already on the hardware queue.

Protocol: JSON lines over a Unix stream socket. Client: ``{"op":"register",...}`` then
``{"op":"run","id":N,"kernels_s":[...]}``; device: ``{"op":"registered",...}`` and
``{"op":"done","id":N}`` when the last kernel of that request finished.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from xsched_ops_workload import evidence as evidence_mod
from xsched_ops_workload.events import EventLog
from xsched_ops_workload.simclient import SimQueueClient
from xsched_ops_workload.xsched_decision import (
    KNOWN_POLICIES,
    WATCH_INTERVAL_S,
    XServerUnavailable,
    decide_xsched,
    effective_scheduler,
    query_xserver,
    xserver_answers,
)

# The decision and the client have modules of their own; their names stay importable from here.
__all__ = ["KNOWN_POLICIES", "SimDevice", "SimQueueClient", "XServerUnavailable", "decide_xsched",
           "effective_scheduler", "query_xserver", "run_device", "xserver_answers"]


@dataclass(eq=False)
class _Request:
    connection: _Connection
    request_id: int
    remaining: int


@dataclass(eq=False)
class _Kernel:
    queue: _Queue
    duration_s: float
    request: _Request
    order: int


@dataclass(eq=False)
class _Queue:
    queue_id: int
    role: str
    pid: int
    stream_priority: int
    decision: dict
    pending: deque = field(default_factory=deque)
    in_flight: int = 0
    refilling: bool = False
    closed: bool = False
    hung: bool = False  # its scheduler (the xserver) died: nothing of it is dispatched again

    @property
    def xsched(self) -> bool:
        return bool(self.decision.get("xsched_active"))


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.send_lock = threading.Lock()

    def send(self, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        with self.send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the role went away; its results are its own business


class SimDevice:
    def __init__(self, socket_path: str, xserver_host: str, xserver_port: int, log: EventLog) -> None:
        self.socket_path = socket_path
        self.xserver_host = xserver_host
        self.xserver_port = xserver_port
        self.log = log
        self.cond = threading.Condition()
        self.hardware: list[_Kernel] = []
        self.queues: dict[int, _Queue] = {}
        self._next_queue = 1
        self._order = 0
        self._stopping = False
        self.kernels_run = 0
        self.busy_s = 0.0
        self._watching = False  # a watcher thread checks the xserver while global queues exist
        self.xserver_lost = False

    # -- scheduling (all under self.cond) -------------------------------------------------------
    def _held_back(self, queue: _Queue) -> bool:
        for other in self.queues.values():
            if (other is queue or not other.xsched or other.hung
                    or other.decision["scope"] != queue.decision["scope"]):
                continue
            if other.decision["priority"] > queue.decision["priority"] and (other.pending or other.in_flight):
                return True
        return False

    def _dispatch(self) -> None:
        for queue in self.queues.values():
            if not queue.xsched or queue.hung or not queue.pending or self._held_back(queue):
                continue
            threshold, batch_size = queue.decision["threshold"], queue.decision["batch_size"]
            while queue.pending:
                if queue.refilling:
                    if queue.in_flight > threshold - batch_size:
                        break
                    queue.refilling = False
                if queue.in_flight >= threshold:
                    queue.refilling = True
                    break
                kernel = queue.pending.popleft()
                queue.in_flight += 1
                self.hardware.append(kernel)
        self.cond.notify_all()

    def _submit(self, queue: _Queue, request: _Request, durations: list[float]) -> None:
        with self.cond:
            for duration in durations:
                self._order += 1
                kernel = _Kernel(queue, duration, request, self._order)
                if queue.xsched:
                    queue.pending.append(kernel)
                else:
                    queue.in_flight += 1
                    self.hardware.append(kernel)
            self._dispatch()

    def _pick(self) -> _Kernel:
        best = self.hardware[0]
        for kernel in self.hardware:
            if kernel.queue.stream_priority > best.queue.stream_priority:
                best = kernel
        self.hardware.remove(best)
        return best

    def _execute_forever(self) -> None:
        busy_until = 0.0
        while True:
            with self.cond:
                while not self.hardware and not self._stopping:
                    self.cond.wait()
                if self._stopping:
                    return
                kernel = self._pick()
            now = time.monotonic()
            # Back-to-back kernels end at fixed offsets so sleep overshoot does not accumulate.
            start = busy_until if now - busy_until < 0.002 else now
            busy_until = start + kernel.duration_s
            remaining = busy_until - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
            finished = None
            with self.cond:
                self.kernels_run += 1
                self.busy_s += kernel.duration_s
                kernel.queue.in_flight -= 1
                kernel.request.remaining -= 1
                if kernel.request.remaining == 0:
                    finished = kernel.request
                self._dispatch()
            if finished is not None:
                finished.connection.send({"op": "done", "id": finished.request_id})

    # -- connections ------------------------------------------------------------------------------
    def _register(self, connection: _Connection, message: dict) -> _Queue:
        peer_pid = None
        try:
            creds = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            peer_pid = struct.unpack("3i", creds)[0]
        except OSError:
            pass
        reported = message.get("evidence") or {}
        pid = peer_pid or int(message.get("pid") or 0)
        try:
            shim_paths = evidence_mod.shim_paths_from_maps(evidence_mod.read_maps(pid))
            env = evidence_mod.read_environ(pid)
            source = "proc"
        except (OSError, ValueError):
            shim_paths = list(reported.get("shim_paths") or [])
            env = dict(reported.get("env") or {})
            source = "reported"
        decision = decide_xsched(shim_paths, env, pid,
                                 lambda: query_xserver(self.xserver_host, self.xserver_port),
                                 f"{self.xserver_host}:{self.xserver_port}")
        decision["evidence_source"] = source
        decision["shim_paths"] = shim_paths
        start_watcher = False
        with self.cond:
            queue = _Queue(self._next_queue, str(message.get("role", "?")), pid,
                           int(message.get("stream_priority", 0)), decision)
            self._next_queue += 1
            self.queues[queue.queue_id] = queue
            if queue.xsched and decision["scope"] == "global" and not self._watching:
                self._watching = start_watcher = True
        self.log.write({"event": "register", "role": queue.role, "pid": pid, "queue": queue.queue_id,
                        "stream_priority": queue.stream_priority, **decision})
        if start_watcher:
            threading.Thread(target=self._watch_xserver, name="sim-xserver-watch", daemon=True).start()
        return queue

    def _global_queues(self) -> list[_Queue]:
        return [q for q in self.queues.values() if q.xsched and not q.hung and q.decision["scope"] == "global"]

    def _watch_xserver(self) -> None:
        """While queues under the global scheduler exist, check every WATCH_INTERVAL_S that the
        xserver answers. A refused connection is final at once; any other failure (a timeout: the
        real xserver serves HTTP one connection at a time) only when the next check fails too.
        Then those queues hang, as XSched's clients of a dead xserver do (facts, section 1)."""
        failures = 0
        while True:
            with self.cond:
                if self._stopping or not self._global_queues():
                    self._watching = False
                    return
            ok, detail = xserver_answers(self.xserver_host, self.xserver_port)
            refused = "ConnectionRefusedError" in detail
            failures = 0 if ok else failures + 1
            if failures >= 2 or (failures and refused):
                with self.cond:
                    lost = self._global_queues()
                    for queue in lost:
                        queue.hung = True
                    self.xserver_lost = True
                    self._watching = False
                    self._dispatch()
                self.log.write({"event": "xserver_lost", "xserver": f"{self.xserver_host}:{self.xserver_port}",
                                "detail": detail, "wall_time": time.time(),
                                "queues": [{"queue": q.queue_id, "role": q.role, "pid": q.pid,
                                            "pending_kernels": len(q.pending)} for q in lost],
                                "effect": "kernels of these queues are never dispatched again: their requests "
                                          "hang, as XSched's clients of a dead xserver do"})
                return
            time.sleep(WATCH_INTERVAL_S)

    def _serve_connection(self, sock: socket.socket) -> None:
        connection = _Connection(sock)
        queue: _Queue | None = None
        reader = sock.makefile("rb")
        try:
            for line in reader:
                message = json.loads(line)
                op = message.get("op")
                if op == "register" and queue is None:
                    queue = self._register(connection, message)
                    connection.send({"op": "registered", "queue": queue.queue_id, "decision": queue.decision})
                elif op == "run" and queue is not None:
                    durations = [float(d) for d in message["kernels_s"]]
                    request = _Request(connection, int(message["id"]), len(durations))
                    if not durations:
                        connection.send({"op": "done", "id": request.request_id})
                    else:
                        self._submit(queue, request, durations)
                else:
                    connection.send({"op": "error", "error": f"unexpected message {op!r}"})
        except (OSError, ValueError, KeyError):
            pass
        finally:
            if queue is not None:
                with self.cond:
                    queue.pending.clear()  # kernels already on the hardware still run
                    self.queues.pop(queue.queue_id, None)
                    self._dispatch()
            sock.close()

    def serve_forever(self) -> None:
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.socket_path)
        server.listen(64)
        threading.Thread(target=self._execute_forever, name="sim-executor", daemon=True).start()
        self.log.write({"event": "device_ready", "socket": self.socket_path, "pid": os.getpid(),
                        "simulated": True})
        try:
            while True:
                sock, _ = server.accept()
                if self._stopping:
                    sock.close()
                    break
                threading.Thread(target=self._serve_connection, args=(sock,), daemon=True).start()
        finally:
            with self.cond:
                self._stopping = True
                self.cond.notify_all()
            server.close()
            self.log.write({"event": "device_end", "kernels": self.kernels_run, "busy_s": round(self.busy_s, 6),
                            "xserver_lost": self.xserver_lost})


    def stop(self) -> None:
        """End ``serve_forever`` from another thread (tests; the device process ends by SIGTERM)."""
        with self.cond:
            self._stopping = True
            self.cond.notify_all()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
                wake.connect(self.socket_path)
        except OSError:
            pass


def run_device(socket_path: str, xserver_host: str, xserver_port: int, log: EventLog) -> int:
    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    device = SimDevice(socket_path, xserver_host, xserver_port, log)
    try:
        device.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            os.unlink(socket_path)
        except OSError:
            pass
    return 0

