"""The simulated accelerator: one device server process and the client each role uses.

The device has ONE hardware queue served in FIFO order: a kernel is a sleep of the duration
from the profile's kernel table. A role's queue gets XSched semantics (XSched level 1: at most
THRESHOLD kernels of a queue in flight on the hardware, refilled BATCH_SIZE at a time; the
highest priority queue with work runs, lower ones are held back at kernel boundaries) only when
the evidence about the process behind the connection (its pid from SO_PEERCRED) says XSched 1.2
would schedule it (see ``decide_xsched``):
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

import http.client
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
VALID_LEVELS = (1, 2, 3)
XSERVER_WAIT_S = 3.0  # registration reaches the xserver asynchronously (it polls every ~50 ms)
XSERVER_POLL_S = 0.1
XSERVER_TIMEOUT_S = 1.0
WATCH_INTERVAL_S = 0.5


def effective_scheduler(env: dict[str, str]) -> tuple[str, str]:
    """Which scheduler XSched 1.2 creates for a process with ``env``: ("local" | "global" | "app", why).

    A copy of the rule in ``xsched_ops.xsched.settings.effective_scheduler`` (the workload cannot
    import the host package; tests/test_simdevice_decision.py checks that the two agree): a valid
    XSCHED_POLICY (exact, case-sensitive) -> local, XSCHED_SCHEDULER ignored; else
    XSCHED_SCHEDULER=GLB -> global; everything else (unset, APP, LCL without a valid policy,
    XSCHED_POLICY=GBL) -> app-managed, where nothing is scheduled.
    """
    policy = env.get("XSCHED_POLICY")
    scheduler = env.get("XSCHED_SCHEDULER")
    if policy in KNOWN_POLICIES:
        reason = f"XSCHED_POLICY={policy} is a policy: each process gets its own local scheduler"
        if scheduler is not None and scheduler != "LCL":
            reason += f" (XSCHED_SCHEDULER={scheduler} is ignored)"
        return "local", reason
    ignored = f" (XSCHED_POLICY={policy} is not a policy and is ignored)" if policy is not None else ""
    if scheduler == "GLB":
        return "global", "XSCHED_SCHEDULER=GLB: the xserver schedules the process" + ignored
    if scheduler == "LCL":
        why = "XSCHED_SCHEDULER=LCL without a valid XSCHED_POLICY falls through to the app-managed scheduler"
    elif scheduler is None or scheduler == "APP":
        why = ("XSCHED_SCHEDULER=APP" if scheduler else "neither XSCHED_SCHEDULER=GLB nor a valid XSCHED_POLICY"
               ) + ": the app-managed scheduler"
    else:
        why = f"XSCHED_SCHEDULER={scheduler} is not a scheduler: the app-managed scheduler"
    return "app", why + ignored + "; nothing is scheduled unless the application does it"


def _int_env(env: dict[str, str], key: str, default: int, notes: list[str]) -> int:
    text = env.get(key)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        notes.append(f"{key}={text!r} is not an integer, default {default} used")
        return default


class XServerUnavailable(Exception):
    """Nothing answers on the xserver's port as an XSched xserver does; the text says what happened."""


def query_xserver(host: str, port: int, path: str = "/xqueues", timeout_s: float = XSERVER_TIMEOUT_S) -> dict:
    """``GET path`` from the xserver's HTTP port, as JSON. Raises XServerUnavailable."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as err:
        raise XServerUnavailable(f"{type(err).__name__}: {err}") from err
    finally:
        conn.close()
    if response.status != 200:
        raise XServerUnavailable(f"GET {path} answered HTTP {response.status}")
    try:
        answer = json.loads(body)
    except ValueError as err:
        raise XServerUnavailable(f"GET {path} answered something that is not JSON ({body[:80]!r})") from err
    if not isinstance(answer, dict):
        raise XServerUnavailable(f"GET {path} answered {type(answer).__name__}, not a JSON object")
    return answer


def xserver_answers(host: str, port: int, timeout_s: float = XSERVER_TIMEOUT_S) -> tuple[bool, str]:
    """Whether the xserver answers ``GET /policy`` at host:port (and, if not, why)."""
    try:
        answer = query_xserver(host, port, "/policy", timeout_s)
    except XServerUnavailable as err:
        return False, str(err)
    return True, f"policy {answer.get('policy')}"


def _pid_entries(view: dict, pid: int) -> tuple[bool, list[dict]]:
    """(whether ``pid`` is among the xserver's processes, its XQueues) from a ``/xqueues`` answer."""
    processes = view.get("processes")
    xqueues = view.get("xqueues")
    if not isinstance(processes, list) or not isinstance(xqueues, list):
        raise XServerUnavailable("GET /xqueues answered without the lists 'processes' and 'xqueues'")
    connected = any(isinstance(p, dict) and p.get("pid") == pid for p in processes)
    mine = [q for q in xqueues if isinstance(q, dict) and q.get("pid") == pid]
    return connected or bool(mine), mine


def _level_problem(level_text: str | None, shim_paths: list[str]) -> str | None:
    """Why XSched creates no XQueue at this XSCHED_AUTO_XQUEUE_LEVEL (None: it creates them)."""
    if level_text is None or level_text == "":
        return None  # default level 1
    try:
        level = int(level_text)
    except ValueError:
        return f"XSCHED_AUTO_XQUEUE_LEVEL={level_text!r} is not a level: XSched warns and creates no XQueue"
    if level not in VALID_LEVELS:
        return f"XSCHED_AUTO_XQUEUE_LEVEL={level} is outside 1..3: XSched warns and creates no XQueue"
    if level > 1 and shim_paths and all("hip" in os.path.basename(p).lower() for p in shim_paths):
        return f"XSCHED_AUTO_XQUEUE_LEVEL={level}: HIP implements level 1 only, XSched creates no XQueue"
    return None


def _decide_global(shim_paths: list[str], env: dict[str, str], pid: int, why: str, xserver_query,
                   xserver_address: str, wait_s: float, poll_s: float) -> dict:
    inactive = {"xsched_active": False, "scope": None, "scheduler": "global", "evidence": "xserver",
                "priority": None, "threshold": None, "batch_size": None, "level": None, "xqueues": 0}
    auto = env.get("XSCHED_AUTO_XQUEUE")
    level_text = env.get("XSCHED_AUTO_XQUEUE_LEVEL")
    expect_xqueue = auto == "ON" and _level_problem(level_text, shim_paths) is None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            connected, mine = _pid_entries(xserver_query(), pid)
        except XServerUnavailable as err:
            return {**inactive, "reason": f"XSCHED_SCHEDULER=GLB but no xserver answers on {xserver_address}: {err} "
                                          "(no global scheduler: native queue)"}
        # Registration is asynchronous: wait for the XQueues, or for the connection alone when the
        # environment says none will come.
        if mine or (connected and not expect_xqueue) or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    if not mine:
        if not connected:
            return {**inactive, "reason": f"the xserver never saw process {pid} connect (waited {wait_s:g} s; "
                                          f"{why}): no global scheduler (native queue)"}
        if auto != "ON":
            because = "XSCHED_AUTO_XQUEUE is not ON"
        else:
            because = _level_problem(level_text, shim_paths) or f"none reached the xserver within {wait_s:g} s"
        return {**inactive, "reason": f"process {pid} connected to the xserver but created no XQueue "
                                      f"(XSCHED_AUTO_XQUEUE={auto or 'unset'}, level {level_text or '1 (default)'}: "
                                      f"{because}): nothing scheduled (native queue)"}
    notes: list[str] = []
    first = mine[0]
    values: dict[str, int] = {}
    for key, env_key, default in (("priority", "XSCHED_AUTO_XQUEUE_PRIORITY", 0),
                                  ("threshold", "XSCHED_AUTO_XQUEUE_THRESHOLD", DEFAULT_THRESHOLD),
                                  ("batch_size", "XSCHED_AUTO_XQUEUE_BATCH_SIZE", DEFAULT_BATCH_SIZE),
                                  ("level", "XSCHED_AUTO_XQUEUE_LEVEL", 1)):
        configured = _int_env(env, env_key, default, [])
        value = first.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            notes.append(f"the xserver lists no {key}: {env_key} ({configured}) used")
            value = configured
        elif value != configured:
            notes.append(f"{env_key} gives {configured} but the xserver has {value}")
        others = sorted({q.get(key) for q in mine if isinstance(q.get(key), int)} - {value})
        if others:
            notes.append(f"the xserver's XQueues of process {pid} differ in {key} "
                         f"({', '.join(str(v) for v in [value, *others])}): the first one's used")
        values[key] = value
    threshold = max(1, values["threshold"])
    batch_size = min(threshold, max(1, values["batch_size"]))
    if (threshold, batch_size) != (values["threshold"], values["batch_size"]):
        notes.append(f"threshold/batch {values['threshold']}/{values['batch_size']} simulated as {threshold}/{batch_size}")
    if values["level"] != 1:
        notes.append(f"level {values['level']} simulated as level 1")
    summary = (f"the xserver on {xserver_address} lists {len(mine)} XQueue(s) of process {pid}: "
               f"priority {values['priority']}, threshold {threshold}, batch {batch_size}")
    return {"xsched_active": True, "scope": "global", "scheduler": "global", "evidence": "xserver",
            "priority": values["priority"], "threshold": threshold, "batch_size": batch_size,
            "level": values["level"], "xqueues": len(mine),
            "reason": "; ".join([f"shim mapped, {why}", summary, *notes])}


def decide_xsched(shim_paths: list[str], env: dict[str, str], pid: int, xserver_query,
                  xserver_address: str = "the xserver's port", wait_s: float = XSERVER_WAIT_S,
                  poll_s: float = XSERVER_POLL_S) -> dict:
    """XSched semantics for one queue, from the process's evidence. Pure apart from ``xserver_query``.

    ``xserver_query()`` returns the xserver's ``GET /xqueues`` answer (a dict) or raises
    XServerUnavailable; it is only called for the global scheduler, repeatedly for up to
    ``wait_s`` while the process's XQueues have not reached the xserver.
    """
    inactive = {"xsched_active": False, "scope": None, "scheduler": None, "evidence": "environment",
                "priority": None, "threshold": None, "batch_size": None, "level": None}
    if not shim_paths:
        return {**inactive, "reason": "no libshim*.so mapped in the process: XSched is not loaded (native queue)"}
    kind, why = effective_scheduler(env)
    if kind == "app":
        return {**inactive, "scheduler": "app", "reason": f"shim mapped, {why} (native queue)"}
    if kind == "global":
        return _decide_global(shim_paths, env, pid, why, xserver_query, xserver_address, wait_s, poll_s)
    inactive["scheduler"] = "local"
    if env.get("XSCHED_AUTO_XQUEUE") != "ON":
        return {**inactive, "reason": f"shim mapped, {why}, but XSCHED_AUTO_XQUEUE is not ON: "
                                      "no XQueue is created (native queue)"}
    problem = _level_problem(env.get("XSCHED_AUTO_XQUEUE_LEVEL"), shim_paths)
    if problem:
        return {**inactive, "reason": f"shim mapped, {why}; {problem} (native queue)"}
    notes = [f"shim mapped, {why}: no priority across processes"]
    policy = env["XSCHED_POLICY"]
    if policy not in PRIORITY_POLICIES:
        notes.append(f"policy {policy} simulated as HPF")
    priority = _int_env(env, "XSCHED_AUTO_XQUEUE_PRIORITY", 0, notes)
    threshold = max(1, _int_env(env, "XSCHED_AUTO_XQUEUE_THRESHOLD", DEFAULT_THRESHOLD, notes))
    batch_size = min(threshold, max(1, _int_env(env, "XSCHED_AUTO_XQUEUE_BATCH_SIZE", DEFAULT_BATCH_SIZE, notes)))
    level = _int_env(env, "XSCHED_AUTO_XQUEUE_LEVEL", 1, notes)
    if level != 1:
        notes.append(f"level {level} simulated as level 1")
    return {"xsched_active": True, "scope": f"local:{pid}", "scheduler": "local", "evidence": "environment",
            "priority": priority, "threshold": threshold, "batch_size": batch_size, "level": level,
            "reason": "; ".join(notes)}


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
