"""Builders of realistic run folders for the results, compare and report tests.

Files are written exactly as xsched_ops/workload/FORMAT.md (format 1) describes: one JSON object
per line, times in seconds relative to t0. No tests live here; other test modules import it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from xsched_ops.results import (
    RunMeta,
    TrialMeta,
    XSchedFacts,
    trial_dir_for,
    write_run_meta,
    write_trial_meta,
)

SHIM = "/opt/xsched/lib/libshimhip.so"
XSCHED_ENV_HIGH = {"XSCHED_SCHEDULER": "GLB", "XSCHED_AUTO_XQUEUE": "ON", "XSCHED_AUTO_XQUEUE_PRIORITY": "1"}
XSCHED_ENV_LOW = {"XSCHED_SCHEDULER": "GLB", "XSCHED_AUTO_XQUEUE": "ON", "XSCHED_AUTO_XQUEUE_PRIORITY": "0"}

PROFILE = {
    "name": "intensive",
    "duration_s": 20,
    "sla_ms": 100,
    "tiers": {
        "excellent": {"p99_ms": 50, "p99_improvement_pct": 90, "low_throughput_loss_pct": 20},
        "good": {"p99_ms": 100, "p99_improvement_pct": 80, "low_throughput_loss_pct": 30},
        "acceptable": {"p99_ms": 200, "p99_improvement_pct": 60, "low_throughput_loss_pct": 50},
    },
    "high": {"model": "torchvision:resnet18", "batch": 1, "rate": 20},
    "low": {"model": "torchvision:resnet50", "batch": 1024},
}


def _write_lines(path: Path, events: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event, separators=(",", ":")) + "\n")


def start_event(role: str, kind: str, *, shim: bool, env: dict[str, str], model: str, batch: int,
                simulated: bool = True, rate: float | None = None, requests: int | None = None,
                sim_active: bool | None = None, pid: int = 1000) -> dict:
    event = {
        "event": "start", "format": 1, "role": role, "pid": pid, "kind": kind, "backend": "sim" if simulated else "torch",
        "simulated": simulated, "model": model, "batch": batch, "device": "sim", "placement": "processes",
        "workload_version": "1.0.0", "wall_time": 1735732800.1, "hostname": "c0ffee",
        "xsched": {"shim_mapped": shim, "shim_paths": [SHIM] if shim else [], "env": env,
                   "ld_preload": SHIM if shim else None, "ld_library_path": "/opt/xsched/lib" if shim else None},
    }
    if simulated:
        active = shim if sim_active is None else sim_active
        event["sim"] = {"xsched_active": active, "scope": "global" if active else None, "priority": 1,
                        "threshold": 16, "batch_size": 8, "evidence_source": "proc",
                        "reason": "shim mapped, XSCHED_* set, xserver answered" if active else "no shim mapped"}
    if rate is not None:
        event["arrival"] = {"process": "uniform", "rate": rate, "jitter": 0.0, "seed": 42, "requests": requests}
    return event


def write_trial(
    run_dir: Path,
    index: int,
    mode: str,
    *,
    latency_ms: Callable[[int, float], float] | float = 5.0,
    duration_s: float = 20.0,
    rate: float = 20.0,
    issue_delay_ms: Callable[[int, float], float] | float = 0.1,
    service_ms: float = 3.0,
    low_iter_s: float | None = 0.5,
    low_start_s: float = 0.0,
    low_batch: int = 1024,
    shim: dict[str, bool] | None = None,
    status: str = "complete",
    reason: str | None = None,
    ended: dict[str, bool] | None = None,
    simulated: bool = True,
    sim_active: dict[str, bool] | None = None,
    unserved_from_s: float | None = None,
    repeat: int = 0,
    write_low: bool = True,
    extra_high_lines: list[str] | None = None,
) -> Path:
    """One trial folder: ``events-high.jsonl`` (open loop), ``events-low.jsonl`` (closed loop), ``trial.json``.

    ``latency_ms`` (constant or a function of (seq, intended_s)) sets done - intended of every request;
    requests intended at or after ``unserved_from_s`` are left unserved (``done_s: null``).
    """
    trial_dir = trial_dir_for(run_dir, index, mode)
    trial_dir.mkdir(parents=True, exist_ok=True)
    with_low = mode != "standalone" and write_low
    expected = mode == "xsched"
    shim = shim or {"high": expected, "low": expected}
    ended = ended or {}
    sim_active = sim_active or {}
    env = {"high": XSCHED_ENV_HIGH if expected else {}, "low": XSCHED_ENV_LOW if expected else {}}

    count = int(round(duration_s * rate))
    drain_end = duration_s + 5.0
    high = [start_event("high", "open-loop", shim=shim["high"], env=env["high"], model="torchvision:resnet18",
                        batch=1, simulated=simulated, rate=rate, requests=count, sim_active=sim_active.get("high")),
            {"event": "warmup", "role": "high", "iterations": 3, "seconds": 2.0},
            {"event": "t0", "role": "high", "t0_wall": 1735732805.0}]
    samples = []
    for seq in range(count):
        intended = seq / rate
        delay = issue_delay_ms(seq, intended) if callable(issue_delay_ms) else issue_delay_ms
        latency = latency_ms(seq, intended) if callable(latency_ms) else latency_ms
        issued = intended + delay / 1000.0
        if unserved_from_s is not None and intended >= unserved_from_s:
            samples.append({"event": "sample", "role": "high", "seq": seq, "intended_s": intended,
                            "issued_s": issued, "started_s": None, "done_s": None})
            continue
        done = intended + latency / 1000.0
        started = max(issued, done - service_ms / 1000.0)
        samples.append({"event": "sample", "role": "high", "seq": seq, "intended_s": intended, "issued_s": issued,
                        "started_s": started, "done_s": done})
    samples.sort(key=lambda s: (s["done_s"] is None, s["done_s"] or 0.0))  # completion order
    high += samples
    completed = sum(s["done_s"] is not None for s in samples)
    if ended.get("high", True):
        high.append({"event": "end", "role": "high", "status": "ok", "error": None, "end_s": drain_end,
                     "issued": count, "completed": completed, "unfinished": count - completed,
                     "iterations": None, "images": None})
    _write_lines(trial_dir / "events-high.jsonl", high)
    if extra_high_lines:
        with (trial_dir / "events-high.jsonl").open("a", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in extra_high_lines)

    role_env = {"high": env["high"]}
    if mode != "standalone":
        role_env["low"] = env["low"]
    if with_low and low_iter_s is not None:
        low = [start_event("low", "closed-loop", shim=shim["low"], env=env["low"], model="torchvision:resnet50",
                           batch=low_batch, simulated=simulated, sim_active=sim_active.get("low"), pid=1001),
               {"event": "warmup", "role": "low", "iterations": 3, "seconds": 2.0},
               {"event": "t0", "role": "low", "t0_wall": 1735732805.0}]
        seq, begin = 0, low_start_s
        while begin < drain_end:
            low.append({"event": "iteration", "role": "low", "seq": seq, "start_s": begin,
                        "end_s": begin + low_iter_s, "images": low_batch})
            seq, begin = seq + 1, begin + low_iter_s
        if ended.get("low", True):
            low.append({"event": "end", "role": "low", "status": "ok", "error": None, "end_s": drain_end,
                        "issued": None, "completed": None, "unfinished": None, "iterations": seq,
                        "images": seq * low_batch})
        _write_lines(trial_dir / "events-low.jsonl", low)
    _write_lines(trial_dir / "launcher.jsonl", [{"event": "launcher", "what": "started", "pid": 999},
                                                {"event": "launcher", "what": "finished", "returncode": 0}])
    write_trial_meta(trial_dir, TrialMeta(
        mode=mode, repeat=repeat, placement="processes", backend="sim" if simulated else "torch",
        simulated=simulated, duration_s=duration_s, target_rate=rate, role_env=role_env,
        started_wall=1735732800.0, ended_wall=1735732830.0, status=status, reason=reason,
        launcher_exit_code=0 if status == "complete" else 1,
    ))
    return trial_dir


def write_run(results_root: Path, run_id: str, *, target_name: str = "zhenflashinfer_v1",
              profile_name: str = "intensive", created_wall: float = 1735732800.0,
              profile: dict | None = None) -> Path:
    run_dir = results_root / run_id
    write_run_meta(run_dir, RunMeta(
        run_id=run_id, profile_name=profile_name, profile=profile if profile is not None else PROFILE,
        target_name=target_name, target={"gpu": "simulated", "hip": "6.2", "torch": None},
        doctor={"passed": 12, "failed": 0, "warnings": 1}, xsched=XSchedFacts(version="1.2", prefix="/opt/xsched",
                                                                               platform="hip"),
        command_line=["xsched-ops", "run", "intensive", "--container", target_name], created_wall=created_wall,
    ))
    return run_dir
