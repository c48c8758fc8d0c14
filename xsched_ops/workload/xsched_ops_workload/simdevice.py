"""The simulated accelerator: one device server process and the client each role uses.

The device has ONE hardware queue served in FIFO order: a kernel is a sleep of the duration
from the profile's kernel table. A role's queue gets XSched semantics (XSched level 1: at most
THRESHOLD kernels of a queue in flight on the hardware, refilled BATCH_SIZE at a time; the
highest priority queue with work runs, lower ones are held back at kernel boundaries) only when
the device finds, for the process behind the connection (its pid from SO_PEERCRED):
- a ``libshim*.so`` mapped in /proc/PID/maps,
- ``XSCHED_AUTO_XQUEUE=ON`` in /proc/PID/environ,
- and ``XSCHED_POLICY`` set (a local scheduler: priorities only among queues of that process),
  or ``XSCHED_SCHEDULER=LCL`` (likewise), or ``XSCHED_SCHEDULER=GLB`` with the xserver answering
  on its port (a global scheduler: priorities across processes).
Nothing the orchestrator says about a "mode" enters the decision. When /proc of the peer cannot
be read, the evidence the role reported is used and the decision says so.

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
from xsched_ops_workload.errors import WorkloadError
from xsched_ops_workload.events import EventLog

KNOWN_POLICIES = ("HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF", "LAX", "AWF", "CFS", "MLFQ")
PRIORITY_POLICIES = ("HPF", "HHPF", "CHPF")
DEFAULT_THRESHOLD = 16
DEFAULT_BATCH_SIZE = 8


def _int_env(env: dict[str, str], key: str, default: int, notes: list[str]) -> int:
    text = env.get(key)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        notes.append(f"{key}={text!r} is not an integer, default {default} used")
        return default


def xserver_answers(host: str, port: int, timeout_s: float = 1.0) -> tuple[bool, str]:
    """Whether something accepts a TCP connection at host:port (and what it says first, if anything)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.settimeout(0.3)
            try:
                greeting = conn.recv(200).decode(errors="replace").strip().splitlines()
            except OSError:
                greeting = []
            return True, greeting[0] if greeting else ""
    except OSError as err:
        return False, f"{type(err).__name__}: {err}"


def decide_xsched(shim_paths: list[str], env: dict[str, str], pid: int,
                  xserver_check) -> dict:
    """XSched semantics for one queue, from the process's evidence. Pure apart from ``xserver_check``."""
    inactive = {"xsched_active": False, "scope": None, "priority": None, "threshold": None, "batch_size": None}
    if not shim_paths:
        return {**inactive, "reason": "no libshim*.so mapped in the process: XSched is not loaded (native queue)"}
    if env.get("XSCHED_AUTO_XQUEUE", "").upper() != "ON":
        return {**inactive, "reason": "shim mapped but XSCHED_AUTO_XQUEUE is not ON: no XQueue is created (native queue)"}
    notes: list[str] = []
    policy = env.get("XSCHED_POLICY", "")
    scheduler = env.get("XSCHED_SCHEDULER", "APP").upper() or "APP"
    if policy:
        if policy.upper() not in KNOWN_POLICIES:
            return {**inactive, "reason": f"XSCHED_POLICY={policy!r} is not a policy name "
                                          f"({', '.join(KNOWN_POLICIES)}): no scheduler (native queue)"}
        scope = f"local:{pid}"
        notes.append(f"XSCHED_POLICY={policy} gives a local scheduler (XSCHED_SCHEDULER ignored): "
                     "no priority across processes")
        if policy.upper() not in PRIORITY_POLICIES:
            notes.append(f"policy {policy} simulated as HPF")
    elif scheduler == "LCL":
        scope = f"local:{pid}"
        notes.append("XSCHED_SCHEDULER=LCL: local scheduler, no priority across processes")
    elif scheduler == "GLB":
        ok, detail = xserver_check()
        if not ok:
            return {**inactive, "reason": f"XSCHED_SCHEDULER=GLB but the xserver does not answer ({detail}): "
                                          "no global scheduler (native queue)"}
        scope = "global"
        notes.append(f"XSCHED_SCHEDULER=GLB, xserver answers{': ' + detail if detail else ''}")
    else:
        return {**inactive, "reason": f"XSCHED_SCHEDULER={scheduler}: no automatic priority scheduling (native queue)"}
    priority = _int_env(env, "XSCHED_AUTO_XQUEUE_PRIORITY", 0, notes)
    threshold = max(1, _int_env(env, "XSCHED_AUTO_XQUEUE_THRESHOLD", DEFAULT_THRESHOLD, notes))
    batch_size = min(threshold, max(1, _int_env(env, "XSCHED_AUTO_XQUEUE_BATCH_SIZE", DEFAULT_BATCH_SIZE, notes)))
    level = _int_env(env, "XSCHED_AUTO_XQUEUE_LEVEL", 1, notes)
    if level != 1:
        notes.append(f"level {level} simulated as level 1")
    return {"xsched_active": True, "scope": scope, "priority": priority, "threshold": threshold,
            "batch_size": batch_size, "reason": "shim mapped, XSCHED_AUTO_XQUEUE=ON; " + "; ".join(notes)}


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

    # -- scheduling (all under self.cond) -------------------------------------------------------
    def _held_back(self, queue: _Queue) -> bool:
        for other in self.queues.values():
            if other is queue or not other.xsched or other.decision["scope"] != queue.decision["scope"]:
                continue
            if other.decision["priority"] > queue.decision["priority"] and (other.pending or other.in_flight):
                return True
        return False

    def _dispatch(self) -> None:
        for queue in self.queues.values():
            if not queue.xsched or not queue.pending or self._held_back(queue):
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
                                 lambda: xserver_answers(self.xserver_host, self.xserver_port))
        decision["evidence_source"] = source
        decision["shim_paths"] = shim_paths
        with self.cond:
            queue = _Queue(self._next_queue, str(message.get("role", "?")), pid,
                           int(message.get("stream_priority", 0)), decision)
            self._next_queue += 1
            self.queues[queue.queue_id] = queue
        self.log.write({"event": "register", "role": queue.role, "pid": pid, "queue": queue.queue_id,
                        "stream_priority": queue.stream_priority, **decision})
        return queue

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
                threading.Thread(target=self._serve_connection, args=(sock,), daemon=True).start()
        finally:
            with self.cond:
                self._stopping = True
                self.cond.notify_all()
            server.close()
            self.log.write({"event": "device_end", "kernels": self.kernels_run, "busy_s": round(self.busy_s, 6)})


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
