"""XSched against the baseline: the seed's comparison table, the tier, the verdict.

Headline numbers are means over the valid repeats of a mode (one repeat: that repeat's value)
with 95 % t-intervals when repeated. The tier follows the profile's criteria (the seed's table by
default); every inequality is strict, as in the seed ("< 50 ms", "> 90 %"), and the percentages
are compared after rounding to 9 decimals so that 90 % exactly is not "more than 90 %" by a
floating-point accident.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from xsched_ops.errors import InvalidRunError, ResultsError
from xsched_ops.profiles import TIER_NAMES
from xsched_ops.results.analysis import summarize_mode
from xsched_ops.results.models import MODES, Interval, ModeSummary, RunResult, TrialAnalysis

COMPARISON_VERSION = 1
TIER_ORDER = (*TIER_NAMES, "fail")  # the profile's tiers, best first, then what meets none


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TierThreshold(_Model):
    """One tier: XSched's P99 below, P99 improvement above, low-priority throughput loss below."""

    name: str
    p99_below_ms: float
    p99_improvement_above_pct: float
    low_loss_below_pct: float


class TierCriteria(_Model):
    """Tiers, best first; a result meeting none of them is ``fail``."""

    tiers: list[TierThreshold]


SEED_TIERS = TierCriteria(tiers=[
    TierThreshold(name="excellent", p99_below_ms=50.0, p99_improvement_above_pct=90.0, low_loss_below_pct=20.0),
    TierThreshold(name="good", p99_below_ms=100.0, p99_improvement_above_pct=80.0, low_loss_below_pct=30.0),
    TierThreshold(name="acceptable", p99_below_ms=200.0, p99_improvement_above_pct=60.0, low_loss_below_pct=50.0),
])

_P99_KEYS = ("p99_below_ms", "p99_ms", "max_p99_ms", "xsched_p99_ms")
_IMPROVEMENT_KEYS = ("p99_improvement_above_pct", "p99_improvement_pct", "min_p99_improvement_pct",
                     "improvement_pct")
_LOSS_KEYS = ("low_loss_below_pct", "low_throughput_loss_pct", "max_low_loss_pct", "low_loss_pct",
              "max_low_throughput_loss_pct")


def tiers_from_profile(profile: object) -> TierCriteria | None:
    """The tier criteria of a resolved profile (a dict or a pydantic model), None when it has none.

    Accepted shapes: ``tiers = {excellent = {p99_ms = 50, p99_improvement_pct = 90,
    low_throughput_loss_pct = 20}, ...}`` or a list of tables with a ``name``.
    """
    if isinstance(profile, TierCriteria):
        return profile
    if isinstance(profile, BaseModel):
        profile = profile.model_dump()
    if not isinstance(profile, dict):
        return None
    raw = profile.get("tiers")
    if raw is None and isinstance(profile.get("success"), dict):
        raw = profile["success"].get("tiers", profile["success"])
    if isinstance(raw, dict):
        items = [dict(value, name=name) for name, value in raw.items() if isinstance(value, dict)]
    elif isinstance(raw, list):
        items = [item for item in raw if isinstance(item, dict)]
    else:
        return None

    def pick(item: dict, keys: tuple[str, ...]) -> float | None:
        value = next((item[key] for key in keys if key in item), None)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    tiers = []
    for item in items:
        values = (pick(item, _P99_KEYS), pick(item, _IMPROVEMENT_KEYS), pick(item, _LOSS_KEYS))
        if item.get("name") and all(value is not None for value in values):
            tiers.append(TierThreshold(name=str(item["name"]).lower(), p99_below_ms=values[0],
                                       p99_improvement_above_pct=values[1], low_loss_below_pct=values[2]))
    if not tiers:
        return None
    known = {name: index for index, name in enumerate(TIER_ORDER)}
    tiers.sort(key=lambda tier: (known.get(tier.name, len(known)), tier.p99_below_ms))
    return TierCriteria(tiers=tiers)


def percent_change(before: float | None, after: float | None) -> float | None:
    """(after - before) / before in percent, rounded to 9 decimals; None when undefined."""
    if before is None or after is None or before == 0:
        return None
    return round((after - before) * 100.0 / before, 9)


def latency_tier(xsched_p99_ms: float | None, improvement_pct: float | None, criteria: TierCriteria) -> str:
    if xsched_p99_ms is None or improvement_pct is None:
        return "fail"
    for tier in criteria.tiers:
        if xsched_p99_ms < tier.p99_below_ms and improvement_pct > tier.p99_improvement_above_pct:
            return tier.name
    return "fail"


def throughput_tier(loss_pct: float | None, criteria: TierCriteria) -> str:
    if loss_pct is None:
        return "fail"
    for tier in criteria.tiers:
        if loss_pct < tier.low_loss_below_pct:
            return tier.name
    return "fail"


def worse_tier(first: str, second: str, criteria: TierCriteria) -> str:
    order = [tier.name for tier in criteria.tiers] + ["fail"]
    return order[max(order.index(first), order.index(second))]


class ComparisonRow(_Model):
    section: str  # "high" | "low"
    metric: str
    unit: str
    baseline: Interval
    xsched: Interval
    change_pct: float | None
    lower_is_better: bool


class ModeBar(_Model):
    """One bar of the terminal chart: a mode's high-priority P99."""

    label: str
    mode: str
    run_id: str
    p99_ms: Interval
    valid: bool


class Comparison(_Model):
    version: int = COMPARISON_VERSION
    title: str
    baseline_run_id: str
    xsched_run_id: str
    baseline_mode: str
    xsched_mode: str
    profile_name: str | None
    target_name: str | None
    target_rate: float | None
    sla_ms: float | None
    low_batch: int | None
    high_model: str | None
    low_model: str | None
    repeats_baseline: int
    repeats_xsched: int
    rows: list[ComparisonRow]
    p99_improvement_pct: float | None
    low_throughput_loss_pct: float | None
    low_throughput_kept_pct: float | None
    high_latency_tier: str
    low_throughput_tier: str
    tier: str
    criteria: TierCriteria
    verdict: str
    warnings: list[str] = Field(default_factory=list)
    simulated: bool
    bars: list[ModeBar]


def _refuse_if_invalid(run: RunResult, mode: str, side: str) -> list[TrialAnalysis]:
    trials = run.trials_of(mode)
    if not trials:
        present = ", ".join(run.modes) or "none"
        raise ResultsError(f"run {run.run_id} has no {mode} trials to use as the {side} (modes: {present})",
                           hint="pass a run that has them, or run them with `xsched-ops run PROFILE --mode "
                                f"{mode}`")
    problems = [f"{finding.message}" for finding in run.findings if finding.severity == "error"]
    for trial in trials:
        problems += [f"{trial.trial_id}: {finding.message}" for finding in trial.errors()]
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        target = run.meta.target_name if run.meta else None
        where = f" --container {target}" if target and target != "local" else (" --local" if target else "")
        raise InvalidRunError(
            f"run {run.run_id} ({side}, mode {mode}) is invalid and cannot be compared: {shown}",
            hint=f"run `xsched-ops doctor{where}`, fix what it reports (or use `xsched-ops fix-and-rerun`), "
                 "then run again; details: `xsched-ops results show " + run.run_id + "`",
        )
    return trials


def _row(section: str, metric: str, unit: str, baseline: Interval, xsched: Interval, lower_is_better: bool
         ) -> ComparisonRow:
    return ComparisonRow(section=section, metric=metric, unit=unit, baseline=baseline, xsched=xsched,
                         change_pct=percent_change(baseline.mean, xsched.mean), lower_is_better=lower_is_better)


def _fraction_interval(rate: Interval, target: float | None) -> Interval:
    if not target or rate.mean is None:
        return Interval(n=rate.n, mean=None, method=rate.method)
    scale = 100.0 / target
    return Interval(n=rate.n, mean=rate.mean * scale,
                    low=None if rate.low is None else rate.low * scale,
                    high=None if rate.high is None else rate.high * scale,
                    values=[value * scale for value in rate.values], method=rate.method)


def _first(values):
    return next((value for value in values if value is not None), None)


def compare(
    baseline: RunResult,
    xsched: RunResult | None = None,
    criteria: TierCriteria | None = None,
    *,
    baseline_mode: str = "baseline",
    xsched_mode: str = "xsched",
) -> Comparison:
    """Compare ``baseline_mode`` of ``baseline`` with ``xsched_mode`` of ``xsched`` (or of the same run).

    Refuses (InvalidRunError, whose hint points at ``xsched-ops doctor``) when a trial of either
    compared mode is invalid; ResultsError when a run lacks the mode. ``criteria`` defaults to the
    baseline run's profile tiers, else the seed's.
    """
    xsched = xsched or baseline
    baseline_trials = _refuse_if_invalid(baseline, baseline_mode, "baseline")
    xsched_trials = _refuse_if_invalid(xsched, xsched_mode, "XSched side")
    if criteria is None:
        criteria = (tiers_from_profile(baseline.meta.profile) if baseline.meta else None) or SEED_TIERS
    base: ModeSummary = summarize_mode(baseline_mode, baseline_trials)
    under: ModeSummary = summarize_mode(xsched_mode, xsched_trials)

    rows = [
        _row("high", "P50 latency", "ms", base.p50_ms, under.p50_ms, True),
        _row("high", "P99 latency", "ms", base.p99_ms, under.p99_ms, True),
        _row("high", "P99.9 latency", "ms", base.p999_ms, under.p999_ms, True),
        _row("high", "Max latency", "ms", base.max_ms, under.max_ms, True),
        _row("high", "Throughput", "rps", base.achieved_rate, under.achieved_rate, False),
        _row("high", "Achieved / target", "%", _fraction_interval(base.achieved_rate, base.target_rate),
             _fraction_interval(under.achieved_rate, under.target_rate), False),
        _row("high", "SLA violations", "%", base.sla_violation_pct, under.sla_violation_pct, True),
        _row("low", "Throughput", "iter/s", base.low_iter_per_s, under.low_iter_per_s, False),
        _row("low", "Throughput", "images/s", base.low_images_per_s, under.low_images_per_s, False),
    ]
    p99_change = percent_change(base.p99_ms.mean, under.p99_ms.mean)
    improvement = None if p99_change is None else round(-p99_change, 9)
    low_change = percent_change(base.low_iter_per_s.mean, under.low_iter_per_s.mean)
    loss = None if low_change is None else round(-low_change, 9)
    kept = None if loss is None else round(100.0 - loss, 9)
    high_tier = latency_tier(under.p99_ms.mean, improvement, criteria)
    low_tier = throughput_tier(loss, criteria)
    overall = worse_tier(high_tier, low_tier, criteria)

    meta = baseline.meta
    high_trial = next((trial for trial in baseline_trials if trial.high is not None), None)
    low_trial = next((trial for trial in baseline_trials if trial.low is not None), None)
    high_model = high_trial.roles[high_trial.high.role].model if high_trial else None
    low_batch = low_trial.low.batch if low_trial else None
    low_model = low_trial.roles[low_trial.low.role].model if low_trial else None
    target_rate = base.target_rate or under.target_rate
    sla_ms = _first(trial.high.sla_ms for trial in baseline_trials if trial.high is not None)
    warnings = _warnings(baseline, xsched, base, under, baseline_mode, xsched_mode)

    improvement_text = "n/a" if improvement is None else f"{'improved' if improvement >= 0 else 'worsened'} " \
        f"{abs(improvement):.0f}%"
    kept_text = "n/a" if kept is None else f"kept {kept:.0f}%"
    verdict = (f"SUMMARY: high priority latency {high_tier.upper()} ({improvement_text}), "
               f"low priority throughput {low_tier.upper()} ({kept_text}) -> overall {overall.upper()}")
    if not base.load_sustained:
        verdict += "; the baseline did not sustain the offered load"
    if not under.load_sustained:
        verdict += "; XSched did not sustain the offered load"

    profile_name = meta.profile_name if meta else None
    title = "COMPARISON: XSched vs Baseline" + (f" ({profile_name})" if profile_name else "")
    return Comparison(
        title=title,
        baseline_run_id=baseline.run_id,
        xsched_run_id=xsched.run_id,
        baseline_mode=baseline_mode,
        xsched_mode=xsched_mode,
        profile_name=profile_name,
        target_name=meta.target_name if meta else None,
        target_rate=target_rate,
        sla_ms=sla_ms,
        low_batch=low_batch,
        high_model=high_model,
        low_model=low_model,
        repeats_baseline=len(base.valid_trials),
        repeats_xsched=len(under.valid_trials),
        rows=rows,
        p99_improvement_pct=improvement,
        low_throughput_loss_pct=loss,
        low_throughput_kept_pct=kept,
        high_latency_tier=high_tier,
        low_throughput_tier=low_tier,
        tier=overall,
        criteria=criteria,
        verdict=verdict,
        warnings=warnings,
        simulated=baseline.simulated or xsched.simulated,
        bars=mode_bars([baseline] if xsched is baseline else [baseline, xsched]),
    )


def _warnings(baseline: RunResult, xsched: RunResult, base: ModeSummary, under: ModeSummary,
              baseline_mode: str, xsched_mode: str) -> list[str]:
    warnings: list[str] = []
    for summary, label in ((base, "baseline"), (under, "XSched")):
        if not summary.load_sustained:
            rate = summary.achieved_rate.mean
            target = f" of {summary.target_rate:g}" if summary.target_rate else ""
            warnings.append(f"LOAD NOT SUSTAINED ({label}): {rate:.2f}{target} req/s completed; the queue grows, "
                            "so its P99 depends on the run's length")
    if baseline.simulated or xsched.simulated:
        warnings.append("SIMULATED: backend sim, not a GPU measurement")
    if baseline is not xsched and baseline.meta and xsched.meta:
        if baseline.meta.profile_name != xsched.meta.profile_name:
            warnings.append(f"different profiles: {baseline.meta.profile_name} against {xsched.meta.profile_name}")
        elif baseline.meta.profile != xsched.meta.profile:
            warnings.append(f"profile {baseline.meta.profile_name} was resolved differently in the two runs "
                            "(overrides differ)")
        if baseline.meta.target_name != xsched.meta.target_name:
            warnings.append(f"different targets: {baseline.meta.target_name} against {xsched.meta.target_name}")
    if base.p99_ms.n == 1 or under.p99_ms.n == 1:
        warnings.append("single repeat: a P99 of a few hundred samples can move 2-3x between identical runs; "
                        "use --repeat for confidence intervals")
    elif (base.p99_ms.low is not None and under.p99_ms.high is not None
          and base.p99_ms.low <= under.p99_ms.high and under.p99_ms.low <= base.p99_ms.high):
        warnings.append("the 95% intervals of P99 overlap: the difference is not established")
    for trial_list, mode in ((baseline.trials_of(baseline_mode), baseline_mode),
                             (xsched.trials_of(xsched_mode), xsched_mode)):
        few = [t.trial_id for t in trial_list
               if any(f.code == "samples-few-p99" for f in t.findings)]
        if few:
            warnings.append(f"{mode}: too few samples for P99 in {', '.join(few)}")
    return warnings


def mode_bars(runs: Sequence[RunResult]) -> list[ModeBar]:
    """High-priority P99 of every mode of the given runs, in the usual mode order."""
    bars: list[ModeBar] = []
    seen: dict[str, int] = {}
    for run in runs:
        for mode in list(MODES) + sorted(set(run.modes) - set(MODES)):
            if mode not in run.modes:
                continue
            seen[mode] = seen.get(mode, 0) + 1
            label = mode if seen[mode] == 1 else f"{mode} ({run.run_id})"
            bars.append(ModeBar(label=label, mode=mode, run_id=run.run_id, p99_ms=run.modes[mode].p99_ms,
                                valid=run.mode_valid(mode)))
    order = {mode: index for index, mode in enumerate(MODES)}
    bars.sort(key=lambda bar: order.get(bar.mode, len(order)))
    return bars
