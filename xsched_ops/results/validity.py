"""Validity rules of a trial (issue 5, part 5).

A finding of severity ``error`` makes the trial invalid, and ``compare`` refuses any run with an
invalid trial in the modes it compares. Errors are measurement defects: the trial did not
measure what its label says.

- mode xsched (``expected_xsched``) and a role without the shim mapped in its own process: the
  run silently measured the native scheduler -> error. On the sim backend, the device's own
  decision that XSched does not apply to a role (e.g. GLB without an answering xserver) -> error.
- mode xsched with the scheduler's own view recorded (``TrialMeta.scheduler``: the xserver's log
  and ``GET /xqueues``): a role the xserver never saw connect, one without XQueues, or one whose
  XQueues got another priority than configured -> error naming the role and the cause (e.g. the
  app-managed fall-through of ``XSCHED_SCHEDULER=LCL``); an xserver that died mid-trial -> error.
- any other mode and a role with the shim mapped -> error (the "baseline" is not native).
- a role that never started, died (no ``end`` event), or ended with ``status: error``; a trial
  whose record says partial or failed, or whose launcher exited non-zero -> error (the partial
  files stay on disk and the trial is marked).
- the generator fell behind its own trace (requests issued inside the window more than 1 % under
  those the trace intended) -> error: the offered load was not applied, which is exactly the
  seed's closed-loop generator defect.

Decision on the achieved (completed) rate: a shortfall of completions is **not** an error. It is
the system's answer to the offered load, and it is what the native FIFO baseline is supposed to
show (the seed: 13.70 of 20 req/s). Making it invalid would make every collapsing baseline
uncomparable. It is recorded as ``load_sustained: false`` with a ``load-not-sustained`` warning
that ``compare`` and the report show prominently: such a P99 depends on the run's length.

Warnings and notes: fewer samples than a P99 needs (662) -> warning; than a P99.9 needs (6636)
-> note; failed requests -> warning; an xsched role with the shim but no ``XSCHED_*`` settings
-> warning; censored latencies, unreadable lines, a simulated device -> notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xsched_ops.results.models import (
    MIN_SAMPLES_P99,
    MIN_SAMPLES_P999,
    RATE_TOLERANCE,
    ClosedLoopStats,
    Finding,
    HighRoleStats,
    RoleEvidence,
    TrialMeta,
)
from xsched_ops.xsched.settings import effective_scheduler


def expected_roles(meta: TrialMeta | None, mode: str) -> set[str]:
    """Roles a trial must have: the keys of its ``role_env`` when given, else by mode."""
    if meta is not None and meta.role_env:
        return set(meta.role_env)
    return {"high"} if mode == "standalone" else {"high", "low"}


def check_trial(
    meta: TrialMeta | None,
    mode: str,
    high: HighRoleStats | None,
    closed_loop: dict[str, ClosedLoopStats],
    roles: dict[str, RoleEvidence],
    unreadable_lines: int = 0,
) -> list[Finding]:
    findings: list[Finding] = []

    def add(code: str, severity: str, message: str, role: str | None = None) -> None:
        findings.append(Finding(code=code, severity=severity, message=message, role=role))

    if meta is not None:
        if meta.status != "complete":
            add("trial-" + meta.status, "error",
                f"the trial is {meta.status}" + (f": {meta.reason}" if meta.reason else ""))
        if meta.launcher_exit_code not in (None, 0):
            add("launcher-exit", "error", f"the workload launcher exited with code {meta.launcher_exit_code}")

    for role in sorted(expected_roles(meta, mode)):
        if role not in roles or not roles[role].started:
            add("role-missing", "error", f"role {role} has no start event: it never ran or its file is missing",
                role)
    for role, evidence in sorted(roles.items()):
        if not evidence.started:
            continue
        if not evidence.ended:
            add("role-died", "error", f"role {role} has no end event: its process died or was killed", role)
        elif evidence.end_status != "ok":
            add("role-error", "error", f"role {role} ended with status {evidence.end_status}"
                + (f": {evidence.end_error}" if evidence.end_error else ""), role)

    if meta is not None:
        _check_xsched_evidence(meta, roles, add)
        _check_mps(meta, roles, add)
        if meta.scheduler is not None and meta.scheduler.xserver_died:
            add("xserver-died", "error", "the xserver died during the trial"
                + (f" ({meta.scheduler.xserver_end})" if meta.scheduler.xserver_end else "")
                + ": its clients were left unscheduled or hanging", None)
        if high is None:
            add("no-open-loop-role", "error", "no open-loop (high-priority) role recorded any request")
        if mode != "standalone" and not closed_loop:
            add("no-closed-loop-role", "error", f"mode {mode} needs a closed-loop (low-priority) role; none ran")

    if high is not None:
        _check_high(high, add)
    if unreadable_lines:
        add("unreadable-lines", "note", f"{unreadable_lines} event line(s) could not be parsed and were skipped")
    if meta is not None and meta.simulated:
        add("simulated", "note", "simulated accelerator (backend sim): not a GPU measurement")
    return findings


def _check_xsched_evidence(meta: TrialMeta, roles: dict[str, RoleEvidence], add) -> None:
    for role, evidence in sorted(roles.items()):
        if not evidence.started:
            continue
        if meta.expected_xsched:
            if evidence.shim_mapped is not True:
                add("shim-missing", "error",
                    f"role {role} runs without the XSched shim mapped in its process (mode {meta.mode}): "
                    "the preload or library path did not take effect, so this would measure the native scheduler",
                    role)
            elif evidence.sim_xsched_active is False:
                add("xsched-inactive", "error",
                    f"role {role} has the shim, but the simulated device did not apply XSched to it"
                    + (f" ({evidence.sim_reason})" if evidence.sim_reason else ""), role)
            _check_scheduler_view(meta, role, evidence, add)
            if evidence.shim_mapped and not evidence.xsched_env:
                add("xsched-env-missing", "warning",
                    f"role {role} has the shim but saw no XSCHED_* settings: XSched runs with its defaults", role)
        elif evidence.shim_mapped:
            paths = ", ".join(evidence.shim_paths) or "a libshim library"
            add("shim-unexpected", "error",
                f"role {role} has {paths} mapped although mode {meta.mode} must run natively", role)


def _check_scheduler_view(meta: TrialMeta, role: str, evidence: RoleEvidence, add) -> None:
    """An xsched role must be seen by the xserver: connected, with XQueues at its configured priority."""
    view = meta.scheduler
    if view is None:  # recorded before the scheduler's evidence existed
        return
    if not view.available:
        add("scheduler-view-unavailable", "note", f"role {role}: the scheduler's own view is not available"
            + (f" ({view.note})" if view.note else ""), role)
        return
    who = f"{role} (pid {evidence.pid})"
    if evidence.scheduler_connected is not True:
        scheduler = effective_scheduler(evidence.xsched_env)
        kind_name = {"app": "app-managed scheduler", "local": "local scheduler"}.get(scheduler.kind, "")
        cause = (f"{kind_name}: {scheduler.reason}" if scheduler.kind != "global"
                 else "its events did not reach this xserver (a stale server queue, another IPC namespace?)")
        add("scheduler-not-connected", "error",
            f"{who}: {'shim mapped, but ' if evidence.shim_mapped else ''}the xserver never saw it connect: {cause}",
            role)
        return
    if not evidence.scheduler_priorities:
        settings = ", ".join(f"{key}={evidence.xsched_env[key]}" for key in
                             ("XSCHED_AUTO_XQUEUE", "XSCHED_AUTO_XQUEUE_LEVEL") if key in evidence.xsched_env)
        add("scheduler-no-xqueue", "error",
            f"{who}: connected to the xserver but created no XQueue ({settings or 'XSCHED_AUTO_XQUEUE unset'}): "
            "nothing of it was scheduled", role)
        return
    wanted = (meta.role_env.get(role) or {}).get("XSCHED_AUTO_XQUEUE_PRIORITY")
    if wanted is not None and wanted.lstrip("-").isdigit():
        wrong = sorted({priority for priority in evidence.scheduler_priorities if priority != int(wanted)})
        if wrong:
            add("scheduler-priority", "error",
                f"{who}: the xserver gave its XQueues priority {', '.join(map(str, wrong))}, not the configured "
                f"{wanted}", role)


def _check_mps(meta: TrialMeta, roles: dict[str, RoleEvidence], add) -> None:
    """Under placement mps every role must have been an MPS client, as the daemon itself listed them."""
    if meta.mps is None:
        return
    if not meta.mps.servers:
        add("mps-no-server", "error", "placement mps: the MPS daemon never started a server, so no role ran under "
            "MPS (the trial measured separate contexts)")
        return
    for role, evidence in sorted(roles.items()):
        if evidence.started and evidence.pid is not None and evidence.pid not in meta.mps.clients:
            add("mps-not-attached", "error",
                f"role {role} (pid {evidence.pid}) never appeared among the MPS server's clients "
                f"({', '.join(map(str, meta.mps.clients)) or 'none'}): it did not run under MPS", role)


def _check_high(high: HighRoleStats, add) -> None:
    role = high.role
    if high.requests and high.issued_in_window < (1.0 - RATE_TOLERANCE) * high.requests:
        add("generator-behind", "error",
            f"offered load not applied: the generator issued {high.issued_in_window} of the trace's "
            f"{high.requests} requests inside the {high.window_s:g} s window "
            f"({100.0 * high.issued_in_window / high.requests:.1f} %, tolerance {100 * RATE_TOLERANCE:g} %)", role)
    if not high.load_sustained and high.requests:
        target = f" of {high.target_rate:g}" if high.target_rate else ""
        detail = f"completed {high.achieved_rate:.2f}{target} req/s in the window"
        trend = high.trend
        if trend.queue_grows and trend.last_third_median_ms is not None and trend.first_third_median_ms is not None:
            slope = "" if trend.slope_ms_per_s is None else f" (slope {trend.slope_ms_per_s:+.1f} ms/s)"
            detail += (f"; queue grows: median latency {trend.first_third_median_ms:.1f} ms in the first "
                       f"third, {trend.last_third_median_ms:.1f} ms in the last{slope}")
        elif trend.queue_grows:
            detail += "; queue grows: requests of the window's last third were never served"
        if high.unfinished:
            detail += f"; {high.unfinished} request(s) still unserved after the drain"
        add("load-not-sustained", "warning",
            f"load not sustained: {detail}; its percentiles depend on the run's length", role)
    count = high.latency_ms.count
    if count < MIN_SAMPLES_P99:
        add("samples-few-p99", "warning",
            f"{count} high-priority samples: too few for P99 (needs {MIN_SAMPLES_P99})", role)
    elif count < MIN_SAMPLES_P999:
        add("samples-few-p999", "note",
            f"{count} high-priority samples: too few for P99.9 (needs {MIN_SAMPLES_P999})", role)
    if high.errors:
        add("request-errors", "warning", f"{high.errors} request(s) failed", role)
    if high.latency_is_lower_bound:
        add("latency-lower-bound", "note",
            f"{high.unfinished} unserved request(s) counted at their lower bound: percentiles are lower bounds",
            role)
    if high.target_rate and high.requests:
        offered = high.requests / high.window_s
        if abs(offered - high.target_rate) > RATE_TOLERANCE * high.target_rate + 1.0 / high.window_s:
            add("trace-off-target", "note",
                f"the arrival trace offers {offered:.2f} req/s against a target of {high.target_rate:g}", role)


@dataclass(frozen=True)
class EventFileFacts:
    """What a role's ``events-<role>.jsonl`` holds, for ``check_event_files``."""

    name: str
    exists: bool
    cut_at: int | None = None  # byte offset of a last line cut in the middle (no newline, not JSON)
    samples: int = 0  # distinct ``seq`` of ``sample`` events
    iterations: int = 0  # ``iteration`` events
    end_counts: dict[str, int] = field(default_factory=dict)  # the end event's completed/unfinished/iterations


def check_event_files(meta: TrialMeta | None, mode: str, facts: dict[str, EventFileFacts]) -> list[Finding]:
    """A trial whose event files are missing or cut short measured less than it says -> error.

    - an expected role without its events file (e.g. ``trial.json`` says complete, no ``events-high.jsonl``);
    - a file whose last line stops in the middle of an event (a copy or a disk cut it short);
    - fewer request samples than the role's ``end`` event counts (``completed + unfinished``: every
      request of the trace is written, served or censored), or fewer iterations than it counts: lines
      were lost or removed, so the percentiles and rates would rest on part of the trial.
    """
    findings: list[Finding] = []
    complete = " although trial.json says the trial is complete" if meta is not None and meta.status == "complete" else ""
    for role in sorted(expected_roles(meta, mode) | set(facts)):
        fact = facts.get(role)
        if fact is None or not fact.exists:
            name = fact.name if fact is not None else f"events-{role}.jsonl"
            findings.append(Finding(code="events-missing", severity="error", role=role,
                                    message=f"{name} is missing{complete}: role {role} measured nothing on record"))
            continue
        if fact.cut_at is not None:
            findings.append(Finding(code="events-truncated", severity="error", role=role,
                                    message=f"{fact.name} ends in the middle of a line (from byte {fact.cut_at}): "
                                            "the file was cut short"))
        counts = fact.end_counts
        if "completed" in counts and "unfinished" in counts:
            expected = counts["completed"] + counts["unfinished"]
            if fact.samples < expected:
                findings.append(Finding(code="samples-missing", severity="error", role=role,
                                        message=f"{fact.name} holds {fact.samples} of the {expected} request samples "
                                                "its end event counts: samples were lost or removed"))
        if "iterations" in counts and fact.iterations < counts["iterations"]:
            findings.append(Finding(code="iterations-missing", severity="error", role=role,
                                    message=f"{fact.name} holds {fact.iterations} of the {counts['iterations']} "
                                            "iterations its end event counts: lines were lost or removed"))
    return findings
