"""A sweep's results as a table of cells x modes, its curves, and the XSched tuning verdict.

Read from a sweep folder (``sweep.json`` and each cell's run): one ``SweepPoint`` per cell and mode,
with the mode's statistics across repeats. The curves put the first axis of the grid with more
than one value on x; other axes split the lines. For sweeps over XSched settings (a key with an
``xsched`` part, e.g. ``low.xsched.threshold``) the tuning view sets, per setting, the xsched
mode's P99 against its low-priority throughput loss. The loss is measured against the baseline
mode's low-priority throughput, averaged over the cells that share the non-XSched values (XSched
settings do not change the baseline); without a baseline mode, against the setting with the most
low-priority throughput, and it says so. The Pareto front is the settings no other beats on both;
the recommendation is the setting that meets the SLA (P99 within it and the load sustained) at the
least loss.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from xsched_ops.errors import ResultsError, XSchedOpsError
from xsched_ops.results.models import ModeSummary
from xsched_ops.sweep.manifest import Manifest, read_manifest

TUNED_MODE = "xsched"
REFERENCE_MODE = "baseline"


@dataclass
class SweepPoint:
    cell_id: str
    overrides: dict[str, str]
    mode: str
    run_id: str
    status: str  # the cell's status in the manifest
    summary: ModeSummary
    sla_ms: float
    simulated: bool
    sampling: dict | None = None  # the P99 rule's verdict for this mode (sampling.ModeSampling as JSON)


@dataclass
class SweepTable:
    folder: Path
    manifest: Manifest
    points: list[SweepPoint] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (cell id, what is wrong): no result, and why

    def problem_lines(self) -> list[str]:
        return [f"{cell_id}: {text}" for cell_id, text in self.problems]

    @property
    def axes(self) -> dict[str, list[str]]:
        return self.manifest.grid

    @property
    def x_key(self) -> str:
        """The axis on x: the first with more than one value (else the first)."""
        return next((key for key, values in self.axes.items() if len(values) > 1), next(iter(self.axes)))

    @property
    def simulated(self) -> bool:
        return any(point.simulated for point in self.points)

    @property
    def sla_ms(self) -> float | None:
        values = {point.sla_ms for point in self.points}
        return values.pop() if len(values) == 1 else None

    @property
    def modes(self) -> list[str]:
        return [mode for mode in self.manifest.modes if any(point.mode == mode for point in self.points)]

    def numeric_x(self) -> bool:
        return all(_number(value) is not None for value in self.axes[self.x_key])

    def x_of(self, point: SweepPoint) -> float:
        """The point's position on x: its value, or its index among the axis' values when they are not numbers."""
        value = point.overrides[self.x_key]
        return _number(value) if self.numeric_x() else float(self.axes[self.x_key].index(value))

    def line_label(self, point: SweepPoint) -> str:
        """Mode, plus the other axes' values when the grid has several."""
        others = [f"{key}={point.overrides[key]}" for key in self.axes if key != self.x_key and len(self.axes[key]) > 1]
        return ", ".join([point.mode, *others])

    def lines(self) -> dict[str, list[SweepPoint]]:
        """Points by line label, sorted along x."""
        grouped: dict[str, list[SweepPoint]] = {}
        for point in self.points:
            grouped.setdefault(self.line_label(point), []).append(point)
        return {label: sorted(points, key=self.x_of) for label, points in grouped.items()}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def load_sweep(folder: Path | str) -> SweepTable:
    """The sweep in ``folder``; a folder without a manifest is a one-line ResultsError (exit 23)."""
    from xsched_ops.results.store import load_run

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise ResultsError(f"{folder} is not a sweep folder (no sweep.json)", "give the --sweep-dir of a sweep")
    table = SweepTable(folder, manifest)
    for cell_id in manifest.order:
        record = manifest.cells[cell_id]
        if record.run_id is None:
            table.problems.append((cell_id, record.status + (f" ({record.reason})" if record.reason else "")))
            continue
        try:
            result = load_run(record.run_id, folder / "runs")
        except XSchedOpsError as err:
            table.problems.append((cell_id, f"unreadable: run {record.run_id}: {err.message}"))
            continue
        profile = (result.meta.profile if result.meta else {}) or {}
        sla_ms = float(profile.get("sla_ms") or 100.0)
        sampling = ((record.sampling or {}).get("modes")) or {}
        for mode, summary in result.modes.items():
            if not summary.valid_trials:  # kept (its means are None: no curve draws it), and said
                table.problems.append((cell_id, f"mode {mode} has no valid trial"))
            table.points.append(SweepPoint(cell_id, dict(record.overrides), mode, record.run_id, record.status,
                                           summary, sla_ms, result.simulated, sampling.get(mode)))
    return table


# --------------------------------------------------------------------------- XSched tuning: Pareto front


def is_xsched_key(key: str) -> bool:
    return "xsched" in key.split(".")


@dataclass
class TuningPoint:
    setting: str  # the XSched axes' values, e.g. "low.xsched.threshold=4"
    cell_id: str
    p99_ms: float
    low_iter_per_s: float
    loss_pct: float
    meets_sla: bool
    rule: str  # the P99 rule: met, not met, over SLA (decided), or - (not judged)
    on_front: bool = False


@dataclass
class Tuning:
    group: str  # the non-XSched axes' values ("" when the grid has only XSched axes)
    reference: str  # what the loss is measured against
    points: list[TuningPoint]
    recommendation: TuningPoint | None
    verdict: str  # one sentence: the recommendation, or why there is none


def _setting(table: SweepTable, point: SweepPoint, xsched: bool) -> str:
    keys = [key for key in table.axes if is_xsched_key(key) == xsched]
    return ", ".join(f"{key}={point.overrides[key]}" for key in keys)


def pareto_front(points: list[TuningPoint]) -> list[TuningPoint]:
    """The points no other point beats on both P99 and loss (lower is better on both), by loss."""
    front = [point for point in points
             if not any(other is not point and other.p99_ms <= point.p99_ms and other.loss_pct <= point.loss_pct
                        and (other.p99_ms < point.p99_ms or other.loss_pct < point.loss_pct) for other in points)]
    return sorted(front, key=lambda point: (point.loss_pct, point.p99_ms))


def tuning(table: SweepTable) -> list[Tuning]:
    """Per group of non-XSched values: the settings' P99 against loss, the front and the recommendation.
    Empty when the grid has no XSched axis or no xsched mode was run."""
    if not any(is_xsched_key(key) for key in table.axes):
        return []
    groups: dict[str, list[SweepPoint]] = {}
    for point in table.points:
        groups.setdefault(_setting(table, point, xsched=False), []).append(point)
    verdicts = []
    for group, points in groups.items():
        tuned = [point for point in points if point.mode == TUNED_MODE and point.summary.p99_ms.mean is not None
                 and point.summary.low_iter_per_s.mean is not None]
        if not tuned:
            continue
        references = [point.summary.low_iter_per_s.mean for point in points
                      if point.mode == REFERENCE_MODE and point.summary.low_iter_per_s.mean]
        if references:
            reference_rate = statistics.fmean(references)
            reference = (f"{REFERENCE_MODE}'s low-priority throughput ({reference_rate:.3g} iter/s, mean of "
                         f"{len(references)} cell(s))")
        else:
            reference_rate = max(point.summary.low_iter_per_s.mean for point in tuned)
            reference = (f"the setting with the most low-priority throughput ({reference_rate:.3g} iter/s; no "
                         f"{REFERENCE_MODE} mode was run)")
        rows = []
        for point in tuned:
            loss = 100.0 * (1.0 - point.summary.low_iter_per_s.mean / reference_rate) if reference_rate else 0.0
            rule = "-" if not point.sampling else ("over SLA" if point.sampling.get("p99_over_sla") else
                                                   "met" if point.sampling.get("rule_met") else "not met")
            rows.append(TuningPoint(_setting(table, point, xsched=True), point.cell_id, point.summary.p99_ms.mean,
                                    point.summary.low_iter_per_s.mean, loss,
                                    point.summary.p99_ms.mean <= point.sla_ms and point.summary.load_sustained, rule))
        for point in pareto_front(rows):
            point.on_front = True
        meeting = [point for point in rows if point.meets_sla]
        best = min(meeting, key=lambda point: (point.loss_pct, point.p99_ms)) if meeting else None
        sla = tuned[0].sla_ms
        where = f" (at {group})" if group else ""
        if best is not None:
            note = "; its P99 rule was not met: run it longer to be sure" if best.rule == "not met" else ""
            cost = (f"{best.loss_pct:.1f} % low-priority throughput loss" if best.loss_pct >= 0 else
                    f"no low-priority throughput loss ({-best.loss_pct:.1f} % more than the reference)")
            verdict = (f"recommended{where}: {best.setting}: P99 {best.p99_ms:.2f} ms within the SLA ({sla:g} ms) at "
                       f"{cost}, the least of the {len(meeting)} setting(s) that meet it{note}")
        else:
            lowest = min(rows, key=lambda point: point.p99_ms)
            verdict = (f"no setting{where} meets the SLA ({sla:g} ms) with the load sustained; the lowest P99 is "
                       f"{lowest.p99_ms:.2f} ms at {lowest.setting}")
        verdicts.append(Tuning(group, reference, sorted(rows, key=lambda point: point.cell_id), best, verdict))
    return verdicts
