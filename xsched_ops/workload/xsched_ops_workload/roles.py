"""The two kinds of role: open-loop requests on a seeded trace, and back-to-back batches."""

from __future__ import annotations

import os
import socket
import threading
import time

from xsched_ops_workload import FORMAT_VERSION, WORKLOAD_VERSION, evidence
from xsched_ops_workload.arrivals import arrival_trace
from xsched_ops_workload.barrier import FileBarrier, RunClock
from xsched_ops_workload.errors import WorkloadError
from xsched_ops_workload.events import EventLog
from xsched_ops_workload.models import SharedResources, build_model
from xsched_ops_workload.runtime import load_runtime
from xsched_ops_workload.spec import RoleSpec, RunSpec

# A closed-loop role stops at `stop`; this much past duration + drain it stops on its own.
CLOSED_LOOP_SAFETY_S = 10.0


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


class RoleRunner:
    """Runs one role from model building to its `end` event; never raises."""

    def __init__(self, spec: RunSpec, role: RoleSpec, shared: SharedResources) -> None:
        self.spec = spec
        self.role = role
        self.shared = shared
        self.log = EventLog(os.path.join(spec.output_dir, f"events-{role.name}.jsonl"),
                            echo_all=spec.stdout_events == "all")
        self.barrier = FileBarrier(spec.barrier_dir, [r.name for r in spec.roles])
        self.clock: RunClock | None = None
        self.status = "running"
        self.error: str | None = None
        self.ended = threading.Event()
        self._end_lock = threading.Lock()
        self.counters: dict = {"issued": None, "completed": None, "unfinished": None,
                               "iterations": None, "images": None}

    def _rel(self) -> float | None:
        return round(self.clock.now(), 6) if self.clock else None

    def write_end(self, status: str, error: str | None) -> None:
        with self._end_lock:
            if self.ended.is_set():
                return
            self.status, self.error = status, error
            self.log.write({"event": "end", "role": self.role.name, "status": status, "error": error,
                            "end_s": self._rel(), **self.counters})
            self.ended.set()

    def run(self) -> None:
        try:
            self._run()
            self.write_end("ok", None)
        except Exception as err:  # any failure ends the role with a one-line reason
            text = str(err) if isinstance(err, WorkloadError) else f"{type(err).__name__}: {err}"
            message = " ".join(text.split())
            try:
                self.barrier.abort(f"role {self.role.name} failed: {message}")
            except OSError:
                pass
            self.write_end("error", message)

    def _start_event(self, model, runtime: dict | None = None) -> dict:
        spec, role = self.spec, self.role
        event = {
            "event": "start", "format": FORMAT_VERSION, "role": role.name, "pid": os.getpid(),
            "kind": role.kind, "backend": spec.backend, "simulated": spec.backend == "sim",
            "model": role.model, "batch": role.batch, "device": "sim", "placement": spec.placement,
            "workload_version": WORKLOAD_VERSION, "run_id": spec.run_id, "wall_time": time.time(),
            "hostname": socket.gethostname(), "duration_s": spec.duration_s,
            "xsched": evidence.collect_self(),
        }
        if runtime is not None:
            event["xsched"]["runtime"] = runtime
        info = model.start_info()
        if spec.backend == "torch":
            event["device"] = info.pop("device_label")
        event.update(info)
        return event

    def _run(self) -> None:
        spec, role = self.spec, self.role
        # The runtime first, as an application loads it: under route libpath this maps the shim.
        runtime = (load_runtime(role.runtime.library, role.runtime.init_symbol, role.runtime.file_prefix)
                   if role.runtime else None)
        model = build_model(spec, role, self.shared)
        trace = None
        start = self._start_event(model, runtime)
        if role.kind == "open-loop":
            assert spec.arrival is not None
            trace = arrival_trace(spec.arrival.process, spec.arrival.rate, spec.arrival.jitter,
                                  spec.arrival.seed, spec.duration_s)
            start["arrival"] = {"process": spec.arrival.process, "rate": spec.arrival.rate,
                                "jitter": spec.arrival.jitter, "seed": spec.arrival.seed, "requests": len(trace)}
        self.log.write(start)

        warm_start = time.monotonic()
        iterations = 0
        while iterations < spec.warmup_iterations or time.monotonic() - warm_start < spec.warmup_s:
            model.run_once()
            iterations += 1
        self.log.write({"event": "warmup", "role": role.name, "iterations": iterations,
                        "seconds": round(time.monotonic() - warm_start, 4)})

        t0_wall = self.barrier.arrive_and_wait(role.name, spec.barrier_timeout_s)
        self.clock = RunClock(t0_wall)
        self.log.write({"event": "t0", "role": role.name, "t0_wall": t0_wall})
        self.clock.sleep_until(0.0)
        if trace is not None:
            self._open_loop(model, trace)
        else:
            self._closed_loop(model)

    # -- open loop --------------------------------------------------------------------------------
    def _open_loop(self, model, trace):
        """Serve the arrival trace open loop, one request at a time, in arrival order.

        One server in FIFO order needs no generator thread: request k starts at
        max(intended_k, done_(k-1)), which is exactly what a generator thread feeding a queue
        gives, without a thread hand-off inside every measured latency. Latency is always
        ``done - intended``. When the server is idle it sleeps until the intended time, and the
        oversleep is the issue delay (the harness's own lateness); when it is busy the request
        arrived on time and waits, and that wait is queueing (``started - issued``).
        """
        spec, clock, name = self.spec, self.clock, self.role.name
        assert clock is not None
        stats_lock = threading.Lock()
        latencies_ms = []
        served = [0]

        stop_progress = threading.Event()

        def report_progress():
            while not stop_progress.wait(spec.progress_interval_s):
                t_s = clock.now()
                with stats_lock:
                    ordered = sorted(latencies_ms)
                    completed = len(ordered)
                issued = sum(1 for intended in trace if intended <= t_s)
                self.log.write({
                    "event": "progress", "role": name, "t_s": round(t_s, 3), "issued": issued,
                    "completed": completed,
                    "achieved_rate": round(completed / min(t_s, spec.duration_s), 3) if t_s > 0 else None,
                    "p50_ms": _round(_percentile(ordered, 0.50)), "p99_ms": _round(_percentile(ordered, 0.99)),
                    "max_ms": _round(ordered[-1] if ordered else None),
                })

        progress = threading.Thread(target=report_progress, name=name + "-progress", daemon=True)
        progress.start()
        drain_deadline = spec.duration_s + spec.drain_s
        try:
            for seq, intended in enumerate(trace):
                if self.barrier.aborted():
                    raise WorkloadError("run aborted: %s" % self.barrier.abort_reason())
                if clock.now() >= drain_deadline:
                    break
                if clock.now() < intended:
                    clock.sleep_until_precise(intended)
                    issued = clock.now()
                else:
                    issued = intended  # it arrived on time and waited behind the previous request
                started = clock.now()
                error = None
                try:
                    model.run_once()
                except Exception as err:
                    error = " ".join(("%s: %s" % (type(err).__name__, err)).split())
                done = clock.now()
                sample = {"event": "sample", "role": name, "seq": seq, "intended_s": round(intended, 6),
                          "issued_s": round(issued, 6), "started_s": round(started, 6), "done_s": round(done, 6)}
                if error:
                    sample["error"] = error
                self.log.write(sample)
                if error:
                    raise RuntimeError("request %d failed: %s" % (seq, error))
                with stats_lock:
                    latencies_ms.append((done - intended) * 1000.0)
                served[0] = seq + 1
        finally:
            stop_progress.set()
            # Requests not served within the drain are censored samples: those that had arrived
            # carry their arrival as issue time, later ones none.
            now = clock.now()
            for seq in range(served[0], len(trace)):
                intended = trace[seq]
                arrived = intended <= now
                self.log.write({"event": "sample", "role": name, "seq": seq, "intended_s": round(intended, 6),
                                "issued_s": round(intended, 6) if arrived else None,
                                "started_s": None, "done_s": None})
            with stats_lock:
                completed = len(latencies_ms)
            issued_total = sum(1 for intended in trace if intended <= now)
            self.counters.update({"issued": issued_total, "completed": completed,
                                  "unfinished": len(trace) - completed})
            self.barrier.request_stop()

    # -- closed loop ------------------------------------------------------------------------------
    def _closed_loop(self, model) -> None:
        spec, clock, name, batch = self.spec, self.clock, self.role.name, self.role.batch
        assert clock is not None
        has_open_loop = spec.open_loop_role is not None
        hard_stop = spec.duration_s + spec.drain_s + CLOSED_LOOP_SAFETY_S
        seq = 0
        last_progress = 0.0
        while True:
            now = clock.now()
            if self.barrier.stop_requested() or now >= hard_stop or (not has_open_loop and now >= spec.duration_s):
                break
            if self.barrier.aborted():
                raise WorkloadError(f"run aborted: {self.barrier.abort_reason()}")
            started = clock.now()
            model.run_once()
            ended = clock.now()
            self.log.write({"event": "iteration", "role": name, "seq": seq, "start_s": round(started, 6),
                            "end_s": round(ended, 6), "images": batch})
            seq += 1
            if ended - last_progress >= spec.progress_interval_s:
                last_progress = ended
                self.log.write({"event": "progress", "role": name, "t_s": round(ended, 3), "iterations": seq,
                                "images": seq * batch, "iter_per_s": round(seq / ended, 3) if ended > 0 else None})
        self.counters.update({"iterations": seq, "images": seq * batch})


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
