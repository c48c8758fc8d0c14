"""The report's plots (matplotlib, Agg backend), each returned as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xsched_ops.report.data import ModeGroup, ReportData  # noqa: E402
from xsched_ops.results.models import Interval  # noqa: E402

MODE_COLORS = {"standalone": "#4c72b0", "baseline": "#c44e52", "xsched": "#55a868", "priority-streams": "#8172b2"}
_FALLBACK_COLORS = ["#dd8452", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]


def _color(group: ModeGroup, index: int) -> str:
    if group.label == group.mode and group.mode in MODE_COLORS:
        return MODE_COLORS[group.mode]
    return _FALLBACK_COLORS[index % len(_FALLBACK_COLORS)]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _groups_for_plots(data: ReportData) -> list[tuple[ModeGroup, list]]:
    """Each group with the series it plots: the valid ones, or every one when none is valid."""
    return [(group, group.valid_series or group.series) for group in data.groups]


NO_SAMPLES = "no samples"


def _say_no_samples(axes, detail: str) -> None:
    """Write "no samples" in the middle of empty axes (instead of leaving a blank frame)."""
    axes.text(0.5, 0.5, f"{NO_SAMPLES}\n({detail})", transform=axes.transAxes, ha="center", va="center",
              fontsize=11, color="#555555")


def _legend(axes, **options) -> None:
    """A legend only where something carries a label: matplotlib warns about an empty one."""
    if axes.get_legend_handles_labels()[0]:
        axes.legend(**options)


def _cdf_latencies(series_list: list) -> list[float]:
    return sorted(value for series in series_list for _, value in series.points if value > 0)


def _picked_values(series_list: list, pick) -> list[float]:
    return [value for value in (pick(series.trial) for series in series_list) if value is not None]


def _pick_p99(trial) -> float | None:
    return trial.high.latency_ms.p99 if trial.high else None


def _pick_low_rate(trial) -> float | None:
    return trial.low.iter_per_s if trial.low else None


def latency_cdf(data: ReportData) -> bytes:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    plotted = False
    for index, (group, series_list) in enumerate(_groups_for_plots(data)):
        latencies = _cdf_latencies(series_list)
        if not latencies:
            continue
        count = len(latencies)
        fractions = [(rank + 1) / count for rank in range(count)]
        style = "-" if group.valid_series else "--"
        suffix = "" if group.valid_series else " (invalid)"
        axes.step(latencies, fractions, where="post", linestyle=style, color=_color(group, index),
                  label=f"{group.label}{suffix} (n={count})")
        plotted = True
    if data.sla_ms:
        axes.axvline(data.sla_ms, color="black", linestyle=":", linewidth=1.2, label=f"SLA {data.sla_ms:g} ms")
    if plotted:
        axes.set_xscale("log")
    else:
        _say_no_samples(axes, "no trial recorded a high-priority latency")
    axes.set_xlabel("high-priority latency (ms, log scale)")
    axes.set_ylabel("fraction of requests")
    axes.set_ylim(0, 1.01)
    axes.set_title("High-priority latency CDF (all repeats pooled)")
    axes.grid(True, which="both", alpha=0.3)
    _legend(axes, loc="lower right", fontsize=8)
    return _png(figure)


def latency_over_time(data: ReportData) -> bytes:
    groups = _groups_for_plots(data)
    rows = max(1, len(groups))
    figure, axes_list = plt.subplots(rows, 1, figsize=(8, 2.2 * rows + 0.6), sharex=True, squeeze=False)
    for index, (group, series_list) in enumerate(groups):
        axes = axes_list[index][0]
        for repeat_index, series in enumerate(series_list):
            xs = [point[0] for point in series.points]
            ys = [max(point[1], 1e-3) for point in series.points]
            axes.scatter(xs, ys, s=4, alpha=0.6, color=_color(group, index),
                         marker="os^vD<>"[repeat_index % 7], label=f"repeat {series.trial.repeat}")
        if data.sla_ms:
            axes.axhline(data.sla_ms, color="black", linestyle=":", linewidth=1)
        if any(series.points for series in series_list):
            axes.set_yscale("log")
        else:
            _say_no_samples(axes, "no high-priority latency in this mode")
            axes.set_yticks([])  # the default -0.05..0.05 ms would read as data
        axes.set_ylabel("ms")
        axes.set_title(group.label + ("" if group.valid_series else " (invalid)"), fontsize=9, loc="left")
        axes.grid(True, alpha=0.3)
        if len(series_list) > 1:
            _legend(axes, fontsize=7, loc="upper right", markerscale=2)
    if not groups:
        _say_no_samples(axes_list[0][0], "no trials")
    axes_list[-1][0].set_xlabel("intended arrival time (s since start)")
    figure.suptitle("High-priority latency over time (log scale; dotted: SLA)", fontsize=10)
    return _png(figure)


def _interval_plot(data: ReportData, pick, pick_interval, ylabel: str, title: str, sla: bool) -> bytes:
    figure, axes = plt.subplots(figsize=(8, 3.8))
    labels: list[str] = []
    for index, (group, series_list) in enumerate(_groups_for_plots(data)):
        values = _picked_values(series_list, pick)
        if not values:
            continue
        position = len(labels)
        labels.append(group.label)
        color = _color(group, index)
        mean = sum(values) / len(values)
        axes.bar(position, mean, color=color, alpha=0.35, width=0.6)
        axes.scatter([position] * len(values), values, color=color, zorder=3, s=22, label=None)
        summary = group.run.modes.get(group.mode)
        interval: Interval | None = pick_interval(summary) if summary is not None and group.valid_series else None
        if interval is not None and interval.low is not None and interval.high is not None:
            axes.errorbar(position, interval.mean, yerr=[[interval.mean - interval.low], [interval.high - interval.mean]],
                          color="black", capsize=6, linewidth=1.2)
    axes.set_xticks(range(len(labels)), labels, fontsize=8)
    if sla and data.sla_ms:
        axes.axhline(data.sla_ms, color="black", linestyle=":", linewidth=1, label=f"SLA {data.sla_ms:g} ms")
        _legend(axes, fontsize=8)
    if not labels:
        _say_no_samples(axes, "no trial has this value")
    axes.set_ylabel(ylabel)
    axes.set_title(title + " (bars: mean; dots: repeats; whiskers: 95% CI)", fontsize=10)
    axes.grid(True, axis="y", alpha=0.3)
    return _png(figure)


def p99_per_mode(data: ReportData) -> bytes:
    return _interval_plot(data, _pick_p99,
                          lambda summary: summary.p99_ms,
                          "P99 latency (ms)", "P99 of the high-priority role per mode", sla=True)


def low_throughput(data: ReportData) -> bytes:
    return _interval_plot(data, _pick_low_rate,
                          lambda summary: summary.low_iter_per_s,
                          "iterations / s", "Low-priority throughput per mode", sla=False)


def all_plots(data: ReportData) -> dict[str, tuple[str, bytes]]:
    """Plot name -> (caption, PNG bytes), in report order; an empty plot says "no samples" in its caption."""
    groups = _groups_for_plots(data)

    def caption(text: str, has_data: bool) -> str:
        return text if has_data else f"{text}: {NO_SAMPLES} (no trial recorded any)"

    latencies = any(_cdf_latencies(series_list) for _, series_list in groups)
    points = any(series.points for _, series_list in groups for series in series_list)
    p99s = any(_picked_values(series_list, _pick_p99) for _, series_list in groups)
    lows = any(_picked_values(series_list, _pick_low_rate) for _, series_list in groups)
    return {
        "cdf": (caption("High-priority latency CDF, every mode, with the SLA", latencies), latency_cdf(data)),
        "timeline": (caption("High-priority latency over time per mode", points), latency_over_time(data)),
        "p99": (caption("High-priority P99 per mode across repeats", p99s), p99_per_mode(data)),
        "low": (caption("Low-priority throughput per mode across repeats", lows), low_throughput(data)),
    }
