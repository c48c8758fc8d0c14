"""What a report shows, gathered once: the runs, their comparison (or why it was refused), raw latencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xsched_ops.errors import InvalidRunError, ResultsError
from xsched_ops.results.compare import Comparison, compare
from xsched_ops.results.events import high_samples, last_time_seen, read_jsonl
from xsched_ops.results.models import MODES, RunResult, TrialAnalysis
from xsched_ops.results.store import TRIALS_DIR


@dataclass
class TrialSeries:
    """One trial's high-priority latencies: (intended time s, latency ms), by intended time."""

    run_id: str
    trial: TrialAnalysis
    points: list[tuple[float, float]]


@dataclass
class ModeGroup:
    """Every trial of one mode of one run (a label like ``baseline`` or ``baseline (run-id)``)."""

    label: str
    mode: str
    run: RunResult
    series: list[TrialSeries] = field(default_factory=list)

    @property
    def valid_series(self) -> list[TrialSeries]:
        return [series for series in self.series if series.trial.valid]


@dataclass
class ReportData:
    runs: list[RunResult]
    comparison: Comparison | None
    comparison_problem: str | None
    groups: list[ModeGroup]

    @property
    def simulated(self) -> bool:
        return any(run.simulated for run in self.runs)

    @property
    def sla_ms(self) -> float | None:
        return next((series.trial.high.sla_ms for group in self.groups for series in group.series
                     if series.trial.high is not None), None)


def trial_points(run: RunResult, trial: TrialAnalysis) -> list[tuple[float, float]]:
    """The trial's latencies from its event file (censored requests at their lower bound)."""
    if trial.high is None:
        return []
    events = read_jsonl(Path(run.run_dir) / TRIALS_DIR / trial.trial_id / f"events-{trial.high.role}.jsonl")
    end = events.first("end") or {}
    censor_at = end.get("end_s") if isinstance(end.get("end_s"), int | float) else None
    if censor_at is None:
        censor_at = last_time_seen(events) or trial.high.window_s
    return [(sample.intended_s, sample.latency_s(censor_at) * 1000.0)
            for sample in high_samples(events)
            if sample.error is None and 0.0 <= sample.intended_s < trial.high.window_s]


def _pick_comparison(runs: list[RunResult]) -> tuple[Comparison | None, str | None]:
    baseline = next((run for run in runs if "baseline" in run.modes), None)
    under = next((run for run in runs if "xsched" in run.modes), None)
    if baseline is None or under is None:
        missing = "baseline" if baseline is None else "xsched"
        return None, f"no comparison: none of the runs has {missing} trials"
    try:
        return compare(baseline, under), None
    except (InvalidRunError, ResultsError) as err:
        return None, err.one_line()


def gather(runs: list[RunResult]) -> ReportData:
    comparison, problem = _pick_comparison(runs)
    groups: list[ModeGroup] = []
    seen: dict[str, int] = {}
    for run in runs:
        for mode in list(MODES) + sorted(set(run.modes) - set(MODES)):
            trials = run.trials_of(mode)
            if not trials:
                continue
            seen[mode] = seen.get(mode, 0) + 1
            label = mode if seen[mode] == 1 else f"{mode} ({run.run_id})"
            group = ModeGroup(label=label, mode=mode, run=run)
            group.series = [TrialSeries(run.run_id, trial, trial_points(run, trial)) for trial in trials]
            groups.append(group)
    order = {mode: index for index, mode in enumerate(MODES)}
    groups.sort(key=lambda group: order.get(group.mode, len(order)))
    return ReportData(runs=runs, comparison=comparison, comparison_problem=problem, groups=groups)
