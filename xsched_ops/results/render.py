"""Terminal rendering of runs and comparisons (rich), and the compact P99 bar chart."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from xsched_ops.results.compare import Comparison, ComparisonRow, ModeBar
from xsched_ops.results.models import Interval, RunResult, TrialAnalysis
from xsched_ops.results.store import RunListing

_EIGHTHS = " ▏▎▍▌▋▊▉█"
TIER_STYLE = {"excellent": "bold green", "good": "green", "acceptable": "yellow", "fail": "bold red"}


def format_value(interval: Interval, digits: int = 2) -> str:
    if interval.mean is None:
        return "n/a"
    text = f"{interval.mean:.{digits}f}"
    if interval.low is not None and interval.high is not None:
        text += f" ±{(interval.high - interval.low) / 2:.{digits}f}"
    return text


def format_change(change: float | None) -> str:
    return "n/a" if change is None else f"{change:+.1f}%"


def bar_chart_lines(bars: list[ModeBar], width: int = 40, unit: str = "ms") -> list[str]:
    """A compact horizontal bar chart of high-priority P99 per mode (linear, longest bar = width)."""
    if not bars:
        return []
    label_width = max(len(bar.label) for bar in bars)
    largest = max((bar.p99_ms.mean for bar in bars if bar.p99_ms.mean is not None), default=0.0)
    lines = ["High-priority P99 latency per mode"]
    for bar in bars:
        value = bar.p99_ms.mean
        if value is None:
            drawn, figure = "", "no valid data"
        else:
            eighths = round(value / largest * width * 8) if largest > 0 else 0
            eighths = max(eighths, 1) if value > 0 else 0
            drawn = "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")
            figure = f"{value:.2f} {unit}"
            if bar.p99_ms.low is not None and bar.p99_ms.high is not None:
                figure += f" [{bar.p99_ms.low:.2f}, {bar.p99_ms.high:.2f}]"
        if not bar.valid:
            figure += "  (INVALID)"
        lines.append(f"  {bar.label.ljust(label_width)} {drawn.ljust(width)} {figure}")
    return lines


def _row_cells(row: ComparisonRow) -> tuple[str, str, str]:
    digits = 1 if row.unit == "%" else 2
    return format_value(row.baseline, digits), format_value(row.xsched, digits), format_change(row.change_pct)


def render_comparison(console: Console, comparison: Comparison) -> None:
    """The seed's layout: a high-priority and a low-priority section, change %, then the verdict."""
    if comparison.simulated:
        console.print("[bold black on yellow] SIMULATED [/] backend sim: not a GPU measurement")
    console.print(Text(comparison.title, style="bold"))
    repeats = f"repeats: baseline n={comparison.repeats_baseline}, XSched n={comparison.repeats_xsched}"
    if comparison.repeats_baseline > 1 or comparison.repeats_xsched > 1:
        repeats += "; values are means ± half-width of the 95 % interval"
    console.print(repeats, style="dim")
    high_name = (comparison.high_model or "high priority").split(":")[-1]
    rate = f", {comparison.target_rate:g} req/s" if comparison.target_rate else ""
    low_name = (comparison.low_model or "low priority").split(":")[-1]
    batch = f", batch={comparison.low_batch}" if comparison.low_batch else ""
    for section, heading in (("high", f"High Priority Task ({high_name}{rate}):"),
                             ("low", f"Low Priority Task ({low_name}{batch}):")):
        console.print(Text(heading, style="bold"))
        table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1))
        table.add_column("  Metric", no_wrap=True, min_width=26)
        table.add_column("Baseline", justify="right", no_wrap=True, min_width=15)
        table.add_column("XSched", justify="right", no_wrap=True, min_width=15)
        table.add_column("Change", justify="right", no_wrap=True, min_width=8)
        for row in comparison.rows:
            if row.section == section:
                table.add_row(f"  {row.metric} ({row.unit})", *_row_cells(row))
        console.print(table)
    console.print(Text(comparison.verdict, style=TIER_STYLE.get(comparison.tier, "bold")))
    console.print(f"tier: [{TIER_STYLE.get(comparison.tier, 'bold')}]{comparison.tier.upper()}[/]  "
                  f"(latency {comparison.high_latency_tier}, low-priority throughput "
                  f"{comparison.low_throughput_tier}; criteria: "
                  + ", ".join(f"{t.name} P99<{t.p99_below_ms:g}ms, improvement>{t.p99_improvement_above_pct:g}%, "
                              f"loss<{t.low_loss_below_pct:g}%" for t in comparison.criteria.tiers) + ")")
    for warning in comparison.warnings:
        style = "bold red" if warning.startswith("LOAD NOT SUSTAINED") else "yellow"
        console.print(Text(f"! {warning}", style=style))
    console.print()
    for line in bar_chart_lines(comparison.bars):
        console.print(line, highlight=False)


def render_run_list(console: Console, listings: list[RunListing]) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("run", "profile", "target", "modes", "status", "valid", "date"):
        table.add_column(column)
    for listing in listings:
        when = datetime.fromtimestamp(listing.created_wall).strftime("%Y-%m-%d %H:%M") if listing.created_wall else ""
        valid = "yes" if listing.valid else "[red]no[/]"
        table.add_row(listing.run_id + (" (sim)" if listing.simulated else ""), listing.profile_name or "?",
                      listing.target_name or "?", ",".join(listing.modes), listing.status, valid, when)
    console.print(table)


def _trial_line(trial: TrialAnalysis) -> list[str]:
    high, low = trial.high, trial.low
    p50 = f"{high.latency_ms.p50:.2f}" if high and high.latency_ms.p50 is not None else "n/a"
    p99 = f"{high.latency_ms.p99:.2f}" if high and high.latency_ms.p99 is not None else "n/a"
    rate = f"{high.achieved_rate:.2f}" if high else "n/a"
    if high and high.target_rate:
        rate += f"/{high.target_rate:g}"
    low_rate = f"{low.iter_per_s:.2f}" if low else "-"
    samples = str(high.latency_ms.count) if high else "0"
    shim = ",".join(f"{role}:{'yes' if ev.shim_mapped else 'no'}" for role, ev in sorted(trial.roles.items()))
    return [trial.trial_id, p50, p99, rate, low_rate, samples, shim,
            "yes" if trial.valid else "[bold red]NO[/]"]


def render_run(console: Console, result: RunResult) -> None:
    meta = result.meta
    header = f"[bold]run {result.run_id}[/]: status {result.status}, " + ("valid" if result.valid else
                                                                          "[bold red]INVALID[/]")
    if meta:
        header += f"; profile {meta.profile_name}, target {meta.target_name}"
    console.print(header)
    if result.simulated:
        console.print("[bold black on yellow] SIMULATED [/] backend sim: not a GPU measurement")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("trial", "P50 ms", "P99 ms", "rate/target", "low iter/s", "samples", "shim", "valid"):
        table.add_column(column, justify="right" if column not in ("trial", "shim", "valid") else "left")
    for trial in result.trials:
        table.add_row(*_trial_line(trial))
    console.print(table)
    for mode, summary in result.modes.items():
        console.print(f"{mode}: P99 {summary.p99_ms.describe()} ms, P50 {summary.p50_ms.describe()} ms, "
                      f"rate {summary.achieved_rate.describe()} req/s, low {summary.low_iter_per_s.describe()} iter/s"
                      + ("" if summary.load_sustained else " [bold red]LOAD NOT SUSTAINED[/]"))
    for finding in result.findings:
        console.print(f"[red]{finding.severity}[/] {finding.message}")
    for trial in result.trials:
        for finding in trial.findings:
            if finding.severity == "note" and finding.code == "simulated":
                continue
            style = {"error": "bold red", "warning": "yellow"}.get(finding.severity, "dim")
            console.print(f"  {trial.trial_id}: [{style}]{finding.severity}[/] {finding.message}")
