"""Enough samples, decided by rule: MLPerf LoadGen's early stopping for a cell's P99, and a target
width of the P99 interval across repeats.

For every valid trial of a mode, ``t`` requests of the ``n`` in its window were over the SLA (a
failed request counts as over it, an unserved one at its lower bound); the rule needs ``h(t) + t``
requests (``results/stats.py``). A mode meets the rule when every valid repeat does. When P99 is
over the SLA at the same confidence, more requests cannot change the answer: the cell is
*decided* and is not extended. The interval target is the 95 % t-interval's half width across
repeats, as a share of the mean P99; with one repeat it is not judged.

Beside the rule, each repeat carries LoadGen's early-stopping P99 *estimate*: the latency that P99
is below at 99 % confidence given the sample's size (the t-th highest latency; none below 662
requests), read from the trial's events with the analysis' definition of latency.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xsched_ops.results.events import high_samples, last_time_seen, read_jsonl
from xsched_ops.results.models import RunResult, TrialAnalysis
from xsched_ops.results.stats import early_stopping_estimate, early_stopping_verdict

P99_SHARE = 0.99


@dataclass
class ModeSampling:
    mode: str
    repeats: int  # valid repeats judged
    requests: list[int] = field(default_factory=list)  # per valid repeat
    over_sla: list[int] = field(default_factory=list)
    needed: list[int] = field(default_factory=list)
    rule_met: bool = False
    p99_over_sla: bool = False  # every repeat over the SLA at 99 % confidence
    interval_half_width_pct: float | None = None
    interval_met: bool | None = None  # None: not judged (fewer than two repeats, or no target)
    p99_estimate_ms: list[float | None] = field(default_factory=list)  # LoadGen's estimate per repeat

    @property
    def more_requests_needed(self) -> int:
        """The largest shortfall of a repeat (0 when the rule is met)."""
        return max((need - have for need, have in zip(self.needed, self.requests, strict=True)), default=0)


@dataclass
class CellSampling:
    """The rule's verdict for one cell (one run): per mode, and what was not met, in words."""

    sla_ms: float
    target_interval_pct: float | None
    modes: dict[str, ModeSampling] = field(default_factory=dict)
    unmet: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return not self.unmet

    @property
    def worth_extending(self) -> bool:
        """A longer window could still change a verdict: a rule not met on a P99 not yet over the SLA,
        or an interval too wide."""
        return any((not mode.rule_met and not mode.p99_over_sla) or mode.interval_met is False
                   for mode in self.modes.values())

    def growth_factor(self) -> float:
        """How much longer the window should be to meet what is unmet (at least 1.5x, for headroom)."""
        factor = 1.0
        for mode in self.modes.values():
            if not mode.rule_met and not mode.p99_over_sla:
                for need, have in zip(mode.needed, mode.requests, strict=True):
                    if have > 0:
                        factor = max(factor, 1.1 * need / have)
                    else:
                        factor = max(factor, 2.0)
            if mode.interval_met is False and mode.interval_half_width_pct and self.target_interval_pct:
                # The half width of a P99 shrinks about as 1 / sqrt(samples per repeat).
                factor = max(factor, (mode.interval_half_width_pct / self.target_interval_pct) ** 2)
        return max(1.5, factor) if factor > 1.0 else 1.0

    def to_json(self) -> dict:
        return {"sla_ms": self.sla_ms, "target_interval_pct": self.target_interval_pct, "met": self.met,
                "unmet": list(self.unmet),
                "modes": {name: {**asdict(mode), "more_requests_needed": mode.more_requests_needed}
                          for name, mode in self.modes.items()}}


def trial_latencies_ms(run_dir: Path, trial: TrialAnalysis) -> list[float]:
    """The high-priority latencies of a trial's window, as ``results/analysis.py`` defines them: done -
    intended, an unserved request at its lower bound (the end of the drain), failed requests left out."""
    if trial.high is None or trial.meta is None:
        return []
    events = read_jsonl(run_dir / "trials" / trial.trial_id / f"events-{trial.high.role}.jsonl")
    end = events.first("end") or {}
    censor_at = end.get("end_s") if isinstance(end.get("end_s"), int | float) else None
    if censor_at is None:
        censor_at = last_time_seen(events) or trial.meta.duration_s
    return [sample.latency_s(float(censor_at)) * 1000.0 for sample in high_samples(events)
            if 0.0 <= sample.intended_s < trial.meta.duration_s and sample.error is None]


def p99_estimate_ms(run_dir: Path, trial: TrialAnalysis) -> float | None:
    estimate = early_stopping_estimate(sorted(trial_latencies_ms(run_dir, trial)), P99_SHARE)
    return None if estimate is None else estimate[0]


def assess_run(result: RunResult, sla_ms: float, target_interval_pct: float | None = None) -> CellSampling:
    """The P99 rule for every mode with an open-loop role, and the interval target across its repeats."""
    assessment = CellSampling(sla_ms=sla_ms, target_interval_pct=target_interval_pct)
    for mode, summary in result.modes.items():
        trials = [trial for trial in result.trials_of(mode) if trial.valid and trial.high is not None]
        if not trials:
            continue
        sampling = ModeSampling(mode=mode, repeats=len(trials))
        verdicts = []
        for trial in trials:
            high = trial.high
            over = min(high.sla_violations, high.requests)
            verdict = early_stopping_verdict(high.requests, over, P99_SHARE)
            verdicts.append(verdict)
            sampling.requests.append(high.requests)
            sampling.over_sla.append(over)
            sampling.needed.append(verdict.needed)
            sampling.p99_estimate_ms.append(p99_estimate_ms(Path(result.run_dir), trial))
        sampling.rule_met = all(verdict.met for verdict in verdicts)
        sampling.p99_over_sla = all(verdict.exceeded for verdict in verdicts)
        interval = summary.p99_ms
        if interval.low is not None and interval.high is not None and interval.mean:
            sampling.interval_half_width_pct = 100.0 * (interval.high - interval.low) / 2.0 / abs(interval.mean)
            if target_interval_pct is not None:
                sampling.interval_met = sampling.interval_half_width_pct <= target_interval_pct
        assessment.modes[mode] = sampling
        if sampling.p99_over_sla:
            pass  # decided: P99 is over the SLA; said in the table, not a shortfall of samples
        elif not sampling.rule_met:
            worst = max(range(len(verdicts)), key=lambda index: verdicts[index].more_needed)
            assessment.unmet.append(
                f"{mode}: P99 rule not met: {verdicts[worst].overlatency} of {verdicts[worst].requests} requests over "
                f"the SLA ({sla_ms:g} ms) need {verdicts[worst].needed} requests "
                f"({verdicts[worst].more_needed} more) for P99 at 99 % confidence")
        if sampling.interval_met is False:
            assessment.unmet.append(
                f"{mode}: P99 interval across {sampling.repeats} repeats is +/-{sampling.interval_half_width_pct:.1f} % "
                f"of its mean (target {target_interval_pct:g} %)")
    return assessment


def extended_duration(current_s: float, assessment: CellSampling, cap_s: float) -> float | None:
    """The next window for a cell whose rule is not met, or None when it should not (or cannot) grow."""
    if assessment.met or not assessment.worth_extending or current_s >= cap_s:
        return None
    return min(cap_s, math.ceil(current_s * assessment.growth_factor()))


def rule_verdict(sampling: dict | None, short: bool = True) -> str:
    """A mode's P99 rule as stored in the manifest (``ModeSampling`` as a dict), in words: met, over the
    SLA (decided), or the requests still missing; ``short`` for the terminal's summary table, else the
    report's wording."""
    if not sampling:
        return "-"
    if sampling.get("p99_over_sla"):
        return "over SLA" if short else "over SLA (decided)"
    missing = sampling.get("more_requests_needed", 0)
    width = sampling.get("interval_half_width_pct") or 0
    if short:
        text = "met" if sampling.get("rule_met") else f"+{missing} req"
        return text + (f", +/-{width:.0f}%" if sampling.get("interval_met") is False else "")
    text = "met" if sampling.get("rule_met") else f"not met: {missing} more requests"
    return text + (f"; interval +/-{width:.1f} %" if sampling.get("interval_met") is False else "")
