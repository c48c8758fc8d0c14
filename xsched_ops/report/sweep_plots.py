"""A sweep's plots (matplotlib, Agg backend), each PNG bytes: latency against the swept parameter,
achieved against offered rate, low-priority throughput, and the XSched tuning Pareto front."""

from __future__ import annotations

from xsched_ops.report.plots import _FALLBACK_COLORS, MODE_COLORS, _legend, _png, _say_no_samples, plt
from xsched_ops.results.models import Interval
from xsched_ops.sweep.table import SweepTable, Tuning


def _line_color(label: str, index: int) -> str:
    return MODE_COLORS.get(label, _FALLBACK_COLORS[index % len(_FALLBACK_COLORS)])


def _x_axis(axes, table: SweepTable) -> None:
    values = table.axes[table.x_key]
    if table.numeric_x():
        numbers = [float(value) for value in values]
        if min(numbers) > 0 and max(numbers) / min(numbers) >= 8:
            axes.set_xscale("log", base=2)
        axes.set_xticks(numbers, values, fontsize=8)
        axes.minorticks_off()
    else:
        axes.set_xticks(range(len(values)), values, fontsize=8, rotation=20)
    axes.set_xlabel(table.x_key)


def _errors(intervals: list[Interval]) -> list[list[float]]:
    """Whisker lengths below and above each mean (0 where there is no interval: one repeat)."""
    below = [interval.mean - interval.low if interval.low is not None else 0.0 for interval in intervals]
    above = [interval.high - interval.mean if interval.high is not None else 0.0 for interval in intervals]
    return [below, above]


def _curve(axes, table: SweepTable, pick, index_offset: int = 0) -> bool:
    """One line per line label of ``pick(point) -> Interval``; a point whose load was not sustained is an x."""
    drawn = False
    for index, (label, points) in enumerate(table.lines().items()):
        kept = [(point, pick(point)) for point in points]
        kept = [(point, interval) for point, interval in kept if interval.mean is not None]
        if not kept:
            continue
        drawn = True
        color = _line_color(label, index + index_offset)
        xs = [table.x_of(point) for point, _ in kept]
        intervals = [interval for _, interval in kept]
        axes.errorbar(xs, [interval.mean for interval in intervals], yerr=_errors(intervals), color=color,
                      marker="o", markersize=4, capsize=4, linewidth=1.4, label=label)
        lost = [(x, interval.mean) for x, (point, interval) in zip(xs, kept, strict=True)
                if not point.summary.load_sustained]
        if lost:
            axes.scatter([x for x, _ in lost], [y for _, y in lost], marker="x", s=70, color="black", zorder=4)
    return drawn


def _log_if_wide(axes) -> None:
    """A log y axis when the drawn values span more than 50x (16 ms beside 5 s)."""
    values = [y for line in axes.get_lines() for y in line.get_ydata() if y > 0]
    if values and max(values) / min(values) > 50:
        axes.set_yscale("log")


def latency_curves(table: SweepTable) -> bytes:
    figure, (p50_axes, p99_axes) = plt.subplots(1, 2, figsize=(10, 3.9))
    for axes, pick, name in ((p50_axes, lambda point: point.summary.p50_ms, "P50"),
                             (p99_axes, lambda point: point.summary.p99_ms, "P99")):
        if not _curve(axes, table, pick):
            _say_no_samples(axes, "no valid cell")
        _x_axis(axes, table)
        axes.set_ylabel(f"{name} latency (ms)")
        axes.grid(True, alpha=0.3)
        _log_if_wide(axes)
        if table.sla_ms and name == "P99":
            axes.axhline(table.sla_ms, color="black", linestyle=":", linewidth=1, label=f"SLA {table.sla_ms:g} ms")
    _legend(p99_axes, fontsize=7)
    figure.suptitle(f"High-priority latency against {table.x_key} (whiskers: 95% CI across repeats; "
                    f"x: load not sustained)", fontsize=10)
    return _png(figure)


def achieved_vs_offered(table: SweepTable) -> bytes:
    figure, axes = plt.subplots(figsize=(7, 4))
    drawn = False
    offered_all: list[float] = []
    for index, (label, points) in enumerate(table.lines().items()):
        rows = sorted(((point.summary.target_rate, point) for point in points
                       if point.summary.target_rate and point.summary.achieved_rate.mean is not None),
                      key=lambda row: row[0])
        if not rows:
            continue
        drawn = True
        offered = [rate for rate, _ in rows]
        offered_all.extend(offered)
        intervals = [point.summary.achieved_rate for _, point in rows]
        swept = len(set(offered)) > 1  # one offered rate: points, no curve and no knee
        axes.errorbar(offered, [interval.mean for interval in intervals], yerr=_errors(intervals), marker="o",
                      markersize=4, capsize=4, color=_line_color(label, index), label=label,
                      linestyle="-" if swept else "none")
        knee = next((rate for rate, point in rows if not point.summary.load_sustained), None) if swept else None
        if knee is not None:
            axes.axvline(knee, color=_line_color(label, index), linestyle="--", linewidth=0.8)
            axes.annotate(f"not sustained from {knee:g}", (knee, 0), textcoords="offset points", xytext=(3, 5),
                          fontsize=7, color=_line_color(label, index))
    if drawn:
        top = max(offered_all)
        axes.plot([0, top], [0, top], color="#888888", linestyle=":", linewidth=1, label="achieved = offered")
        axes.set_xlim(0, top * 1.08)
        axes.set_ylim(0, top * 1.08)
    else:
        _say_no_samples(axes, "no valid cell")
    axes.set_xlabel("offered rate (req/s)")
    axes.set_ylabel("achieved rate (req/s)")
    axes.grid(True, alpha=0.3)
    _legend(axes, fontsize=7)
    axes.set_title("High-priority achieved against offered rate (dashed: where the load stops being sustained)",
                   fontsize=9)
    return _png(figure)


def low_throughput_curve(table: SweepTable) -> bytes:
    figure, axes = plt.subplots(figsize=(7, 3.8))
    if not _curve(axes, table, lambda point: point.summary.low_iter_per_s):
        _say_no_samples(axes, "no valid cell")
    _x_axis(axes, table)
    axes.set_ylabel("low-priority iterations / s")
    axes.grid(True, alpha=0.3)
    _legend(axes, fontsize=7)
    axes.set_title(f"Low-priority throughput against {table.x_key} (whiskers: 95% CI)", fontsize=10)
    return _png(figure)


def pareto_plot(result: Tuning, sla_ms: float | None) -> bytes:
    figure, axes = plt.subplots(figsize=(7.5, 4.4))
    points = result.points
    others = [point for point in points if not point.on_front]
    front = sorted((point for point in points if point.on_front), key=lambda point: point.loss_pct)
    axes.scatter([p.loss_pct for p in others], [p.p99_ms for p in others], color="#999999", s=28,
                 label="dominated setting")
    axes.plot([p.loss_pct for p in front], [p.p99_ms for p in front], color=MODE_COLORS["xsched"], marker="o",
              linewidth=1.6, label="Pareto front")
    for point in points:
        axes.annotate(point.setting.replace(", ", "\n"), (point.loss_pct, point.p99_ms), textcoords="offset points",
                      xytext=(5, 4), fontsize=7)
    if sla_ms:
        axes.axhline(sla_ms, color="black", linestyle=":", linewidth=1, label=f"SLA {sla_ms:g} ms")
    best = result.recommendation
    if best is not None:
        axes.scatter([best.loss_pct], [best.p99_ms], s=260, facecolors="none", edgecolors="#b3261e", linewidths=2,
                     label=f"recommended: {best.setting}", zorder=5)
    axes.set_xlabel("low-priority throughput loss (%)")
    axes.set_ylabel("high-priority P99 (ms), mode xsched")
    axes.grid(True, alpha=0.3)
    _legend(axes, fontsize=7)
    title = "XSched settings: P99 against low-priority throughput loss"
    axes.set_title(title + (f" ({result.group})" if result.group else ""), fontsize=10)
    return _png(figure)


def sweep_plots(table: SweepTable, tunings: list[Tuning]) -> dict[str, tuple[str, bytes]]:
    """Plot name -> (caption, PNG bytes), in report order."""
    plots = {
        "latency": (f"High-priority P50 and P99 against {table.x_key}, one line per mode", latency_curves(table)),
        "rate": ("Achieved against offered rate: where the load stops being sustained", achieved_vs_offered(table)),
        "low": (f"Low-priority throughput against {table.x_key}", low_throughput_curve(table)),
    }
    for index, result in enumerate(tunings):
        plots[f"pareto-{index}"] = (f"Pareto front of P99 against low-priority throughput loss; {result.verdict}",
                                    pareto_plot(result, table.sla_ms))
    return plots
