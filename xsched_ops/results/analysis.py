"""Analysis of one trial from its event files, and across the repeats of a mode.

Definitions (times relative to t0, window ``[0, D)`` with ``D = duration_s``):

- latency = ``done_s - intended_s`` (open loop: every wait counts); a request still unserved when
  the drain ended counts at its lower bound ``end_s - intended_s`` and the percentiles are then
  flagged as lower bounds; failed requests are counted apart and left out of the latency.
- issue delay = ``issued_s - intended_s``; queueing = ``started_s - issued_s``; service =
  ``done_s - started_s``.
- achieved rate = requests completed inside the window / D (what the seed called throughput).
- issued rate = requests issued inside the window / D: how much load the generator applied.
- trend: medians of the latency of requests intended in the first and last third of the window
  and the least-squares slope of latency against intended time (ms per s). The queue grows when
  the slope is positive, the last third's median is at least twice the first's, and the rise is
  at least a tenth of the SLA.
- load sustained: the queue does not grow, nothing is left unserved after the drain, and the
  requests completed in the window are at least 99 % of those intended before ``D - P50`` (a
  request arriving at t typically completes at t + P50, so the window's tail is not held against
  a slow but stable system).
- low-priority iterations are clipped to the window: an iteration that straddles an edge counts
  for the fraction of its duration inside the window.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError

from xsched_ops.results import validity
from xsched_ops.results.events import EventFile, high_samples, last_time_seen, read_jsonl, role_event_files
from xsched_ops.results.models import (
    DEFAULT_SLA_MS,
    RATE_TOLERANCE,
    ClosedLoopStats,
    Finding,
    HighRoleStats,
    ModeSummary,
    RoleEvidence,
    RuntimeLoad,
    Trend,
    TrialAnalysis,
    TrialMeta,
)
from xsched_ops.results.stats import distribution, least_squares_slope, mean_interval, median

TRIAL_META_FILE = "trial.json"
_TRIAL_DIR_RE = re.compile(r"^(?P<index>\d+)-(?P<mode>[a-z-]+)$")


def read_trial_meta(trial_dir: Path) -> tuple[TrialMeta | None, str | None]:
    """The trial's metadata, or None and the reason it could not be read."""
    path = trial_dir / TRIAL_META_FILE
    if not path.is_file():
        return None, f"{path} is missing"
    try:
        return TrialMeta.model_validate_json(path.read_text(encoding="utf-8")), None
    except (ValidationError, ValueError) as err:
        first = str(err).splitlines()[0]
        return None, f"{path} is not a valid trial record ({first})"


def analyze_high(
    role: str,
    events: EventFile,
    window_s: float,
    target_rate: float | None,
    sla_ms: float,
) -> HighRoleStats:
    samples = high_samples(events)
    end_event = events.first("end")
    censor_at = None
    if end_event is not None and isinstance(end_event.get("end_s"), int | float):
        censor_at = float(end_event["end_s"])
    if censor_at is None:
        censor_at = last_time_seen(events) or window_s

    in_trace = [sample for sample in samples if 0.0 <= sample.intended_s < window_s]
    served = [sample for sample in in_trace if sample.error is None]
    errors = len(in_trace) - len(served)
    unfinished = sum(sample.done_s is None for sample in served)
    latencies_ms = [sample.latency_s(censor_at) * 1000.0 for sample in served]

    issued_in_window = sum(s.issued_s is not None and s.issued_s < window_s for s in in_trace)
    completed = [s for s in served if s.done_s is not None]
    completed_in_window = sum(s.done_s < window_s for s in completed)
    achieved_rate = completed_in_window / window_s
    issued_rate = issued_in_window / window_s

    latency = distribution(latencies_ms)
    violations = sum(value > sla_ms for value in latencies_ms) + errors
    violation_pct = 100.0 * violations / len(in_trace) if in_trace else None

    trend = _trend(served, latencies_ms, window_s, sla_ms)
    typical_latency_s = (latency.p50 or 0.0) / 1000.0
    expected_by_end = sum(s.intended_s < window_s - typical_latency_s for s in in_trace)
    keeps_up = completed_in_window >= (1.0 - RATE_TOLERANCE) * expected_by_end
    load_sustained = bool(in_trace) and keeps_up and unfinished == 0 and not trend.queue_grows

    return HighRoleStats(
        role=role,
        window_s=window_s,
        target_rate=target_rate,
        requests=len(in_trace),
        issued_in_window=issued_in_window,
        completed_in_window=completed_in_window,
        completed=len(completed),
        unfinished=unfinished,
        errors=errors,
        issued_rate=issued_rate,
        achieved_rate=achieved_rate,
        achieved_fraction=achieved_rate / target_rate if target_rate else None,
        load_sustained=load_sustained,
        latency_ms=latency,
        latency_is_lower_bound=unfinished > 0,
        issue_delay_ms=distribution([(s.issued_s - s.intended_s) * 1000.0 for s in in_trace
                                     if s.issued_s is not None]),
        queueing_ms=distribution([(s.started_s - s.issued_s) * 1000.0 for s in in_trace
                                  if s.started_s is not None and s.issued_s is not None]),
        service_ms=distribution([(s.done_s - s.started_s) * 1000.0 for s in completed
                                 if s.started_s is not None]),
        sla_ms=sla_ms,
        sla_violations=violations,
        sla_violation_pct=violation_pct,
        trend=trend,
    )


def _trend(served, latencies_ms: list[float], window_s: float, sla_ms: float) -> Trend:
    # Completed requests only: a censored latency is a lower bound that shrinks with arrival time and
    # would hide a growing queue. Requests of the last third that were never served mean it grew.
    pairs = [(sample.intended_s, latency) for sample, latency in zip(served, latencies_ms, strict=True)
             if sample.done_s is not None]
    never_served_late = any(sample.done_s is None and sample.intended_s >= 2.0 * window_s / 3.0 for sample in served)
    if len(pairs) < 2:
        return Trend(queue_grows=never_served_late)
    times = [t for t, _ in pairs]
    latencies_ms = [latency for _, latency in pairs]
    first = [lat for t, lat in zip(times, latencies_ms, strict=True) if t < window_s / 3.0]
    last = [lat for t, lat in zip(times, latencies_ms, strict=True) if t >= 2.0 * window_s / 3.0]
    first_median = median(first) if first else None
    last_median = median(last) if last else None
    slope = least_squares_slope(times, latencies_ms)
    grows = never_served_late or (
        slope is not None and slope > 0.0
        and first_median is not None and last_median is not None
        and last_median >= 2.0 * first_median
        and last_median - first_median >= 0.1 * sla_ms
    )
    return Trend(first_third_median_ms=first_median, last_third_median_ms=last_median,
                 slope_ms_per_s=slope, queue_grows=grows)


def analyze_closed_loop(role: str, events: EventFile, window_s: float) -> ClosedLoopStats:
    start = events.first("start") or {}
    fractional = 0.0
    whole = 0
    images = 0.0
    durations: list[float] = []
    for event in events.of("iteration"):
        begin, finish = event.get("start_s"), event.get("end_s")
        if not isinstance(begin, int | float) or not isinstance(finish, int | float):
            continue
        count = event.get("images")
        count = float(count) if isinstance(count, int | float) else float(start.get("batch") or 0)
        if finish > begin:
            overlap = max(0.0, min(finish, window_s) - max(begin, 0.0))
            share = overlap / (finish - begin)
        else:
            share = 1.0 if 0.0 <= begin < window_s else 0.0
        fractional += share
        images += share * count
        if begin >= 0.0 and finish <= window_s:
            whole += 1
            durations.append((finish - begin) * 1000.0)
    batch = start.get("batch")
    return ClosedLoopStats(
        role=role,
        window_s=window_s,
        batch=batch if isinstance(batch, int) else None,
        iterations_in_window=fractional,
        whole_iterations_in_window=whole,
        images_in_window=images,
        iter_per_s=fractional / window_s,
        images_per_s=images / window_s,
        mean_iteration_ms=sum(durations) / len(durations) if durations else None,
    )


def role_evidence(role: str, events: EventFile, device: EventFile, configured_env: dict[str, str]) -> RoleEvidence:
    start = events.first("start")
    end = events.first("end")
    evidence = RoleEvidence(role=role, configured_env=dict(configured_env))
    if start is not None:
        xsched = start.get("xsched") or {}
        sim = start.get("sim") or {}
        evidence.started = True
        evidence.kind = start.get("kind")
        evidence.pid = start.get("pid") if isinstance(start.get("pid"), int) else None
        evidence.model = start.get("model")
        evidence.batch = start.get("batch") if isinstance(start.get("batch"), int) else None
        shim = xsched.get("shim_mapped")
        evidence.shim_mapped = shim if isinstance(shim, bool) else None
        evidence.shim_paths = [str(path) for path in xsched.get("shim_paths") or []]
        evidence.xsched_env = {str(k): str(v) for k, v in (xsched.get("env") or {}).items()}
        evidence.ld_preload = xsched.get("ld_preload")
        evidence.ld_library_path = xsched.get("ld_library_path")
        runtime = xsched.get("runtime")
        if isinstance(runtime, dict):
            try:
                evidence.runtime = RuntimeLoad.model_validate(runtime)
            except ValidationError:
                evidence.runtime = None  # an unreadable record is no evidence
        if isinstance(sim.get("xsched_active"), bool):
            evidence.sim_xsched_active = sim["xsched_active"]
            evidence.sim_reason = sim.get("reason")
    if evidence.sim_xsched_active is None:
        # The device's own register record, when the role's start event did not carry it.
        for register in device.of("register"):
            if register.get("role") == role and isinstance(register.get("xsched_active"), bool):
                evidence.sim_xsched_active = register["xsched_active"]
                evidence.sim_reason = register.get("reason")
    if end is not None:
        evidence.ended = True
        evidence.end_status = end.get("status")
        evidence.end_error = end.get("error")
    return evidence


def analyze_trial(trial_dir: Path | str, default_sla_ms: float | None = None) -> TrialAnalysis:
    """Analyse one trial folder (``trial.json`` plus the workload's files) and judge its validity."""
    trial_dir = Path(trial_dir)
    meta, meta_problem = read_trial_meta(trial_dir)
    match = _TRIAL_DIR_RE.match(trial_dir.name)
    mode = meta.mode if meta else (match.group("mode") if match else "unknown")
    repeat = meta.repeat if meta else 0

    files = {role: read_jsonl(path) for role, path in role_event_files(trial_dir).items()}
    device = read_jsonl(trial_dir / "device.jsonl")
    findings: list[Finding] = []
    if meta_problem:
        findings.append(Finding(code="trial-meta-missing", severity="error",
                                message=f"no usable trial record: {meta_problem}"))

    role_env = meta.role_env if meta else {}
    roles = {
        role: role_evidence(role, files.get(role, EventFile(path=trial_dir / f"events-{role}.jsonl")),
                            device, role_env.get(role, {}))
        for role in sorted(set(files) | set(role_env))
    }
    if meta is not None and meta.scheduler is not None and meta.scheduler.available:
        for evidence in roles.values():
            seen = meta.scheduler.process(evidence.pid)
            evidence.scheduler_connected = seen is not None
            evidence.scheduler_priorities = [queue.priority for queue in seen.xqueues
                                             if queue.priority is not None] if seen else []

    high = None
    closed_loop: dict[str, ClosedLoopStats] = {}
    if meta is not None:
        sla_ms = meta.sla_ms or default_sla_ms or DEFAULT_SLA_MS
        for role, events in files.items():
            kind = roles[role].kind
            if kind is None:  # no start event: infer from what the file holds
                kind = "open-loop" if events.of("sample") else ("closed-loop" if events.of("iteration") else None)
            if kind == "open-loop" and high is None:
                start = events.first("start") or {}
                rate = meta.target_rate or (start.get("arrival") or {}).get("rate")
                high = analyze_high(role, events, meta.duration_s, float(rate) if rate else None, sla_ms)
            elif kind == "closed-loop":
                closed_loop[role] = analyze_closed_loop(role, events, meta.duration_s)

    unreadable = sum(events.unreadable_lines for events in files.values()) + device.unreadable_lines
    findings.extend(validity.check_trial(meta, mode, high, closed_loop, roles, unreadable))
    findings.extend(validity.check_event_files(meta, mode, event_file_facts(trial_dir, files, set(role_env))))
    simulated = bool(meta.simulated) if meta else any(
        (events.first("start") or {}).get("simulated") for events in files.values())
    return TrialAnalysis(
        trial_id=trial_dir.name,
        mode=mode,
        repeat=repeat,
        meta=meta,
        simulated=simulated,
        high=high,
        closed_loop=closed_loop,
        roles=roles,
        findings=findings,
        valid=not any(finding.severity == "error" for finding in findings),
    )


def _cut_last_line(path: Path) -> int | None:
    """Byte offset of the last line when it stops in the middle of an event (no newline and not JSON)."""
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, 2)
            if size == 0:
                return None
            start = max(0, size - 65536)
            stream.seek(start)
            tail = stream.read()
    except OSError:
        return None
    if tail.endswith(b"\n"):
        return None
    newline = tail.rfind(b"\n")
    last = tail[newline + 1:]
    try:
        if isinstance(json.loads(last.decode("utf-8")), dict):
            return None
    except (ValueError, RecursionError):
        pass
    return start + newline + 1


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def event_file_facts(trial_dir: Path, files: dict[str, EventFile],
                     configured_roles: set[str]) -> dict[str, validity.EventFileFacts]:
    """Per role: does its events file exist, is its last line cut, how many samples/iterations vs its end event."""
    facts: dict[str, validity.EventFileFacts] = {}
    for role in sorted(set(files) | configured_roles):
        events = files.get(role)
        name = f"events-{role}.jsonl"
        if events is None or not events.path.is_file():
            facts[role] = validity.EventFileFacts(name=name, exists=False)
            continue
        end = events.first("end") or {}
        counts = {key: _count(end.get(key)) for key in ("completed", "unfinished", "iterations")}
        facts[role] = validity.EventFileFacts(
            name=name,
            exists=True,
            cut_at=_cut_last_line(events.path),
            samples=len({event.get("seq") for event in events.of("sample") if isinstance(event.get("seq"), int)}),
            iterations=len(events.of("iteration")),
            end_counts={key: value for key, value in counts.items() if value is not None},
        )
    return facts


def summarize_mode(mode: str, trials: list[TrialAnalysis]) -> ModeSummary:
    """Per-mode statistics over the valid repeats (invalid ones are listed but left out)."""
    valid = [trial for trial in trials if trial.valid]

    def high_values(getter):
        return [getter(trial.high) for trial in valid if trial.high is not None]

    def low_values(getter):
        return [getter(trial.low) for trial in valid if trial.low is not None]

    target_rates = {trial.high.target_rate for trial in valid if trial.high is not None}
    return ModeSummary(
        mode=mode,
        trials=[trial.trial_id for trial in trials],
        valid_trials=[trial.trial_id for trial in valid],
        p50_ms=mean_interval(high_values(lambda high: high.latency_ms.p50)),
        p99_ms=mean_interval(high_values(lambda high: high.latency_ms.p99)),
        p999_ms=mean_interval(high_values(lambda high: high.latency_ms.p999)),
        max_ms=mean_interval(high_values(lambda high: high.latency_ms.max)),
        achieved_rate=mean_interval(high_values(lambda high: high.achieved_rate)),
        target_rate=target_rates.pop() if len(target_rates) == 1 else None,
        sla_violation_pct=mean_interval(high_values(lambda high: high.sla_violation_pct)),
        low_iter_per_s=mean_interval(low_values(lambda low: low.iter_per_s)),
        low_images_per_s=mean_interval(low_values(lambda low: low.images_per_s)),
        load_sustained=all(trial.high.load_sustained for trial in valid if trial.high is not None),
        samples=sum(trial.high.latency_ms.count for trial in valid if trial.high is not None),
    )
