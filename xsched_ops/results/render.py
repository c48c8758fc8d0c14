"""Terminal rendering of runs and comparisons (rich), and the compact P99 bar chart."""

from __future__ import annotations

from datetime import datetime

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from xsched_ops.results.compare import Comparison, ComparisonRow, ModeBar
from xsched_ops.results.models import Interval, RunResult, TrialAnalysis
from xsched_ops.results.scheduler_view import role_summary
from xsched_ops.results.store import RunListing

_EIGHTHS = " ▏▎▍▌▋▊▉█"
TIER_STYLE = {"excellent": "bold green", "good": "green", "acceptable": "yellow", "fail": "bold red"}


def _least_width(console: Console, cell: object) -> int:
    """The narrowest a cell can be without breaking a word (its indentation counts, which rich's measure skips)."""
    text = console.render_str(cell) if isinstance(cell, str) else cell
    if not isinstance(text, Text):
        return Measurement.get(console, console.options, text).minimum
    least = 1
    for line in text.plain.splitlines():
        words = line.split()
        if words:
            indent = len(line) - len(line.lstrip())
            least = max(least, indent + cell_len(words[0]), *(cell_len(word) for word in words))
    return least


def _wrapped_width(console: Console, cells: list, width: int) -> int:
    """The width the cells take once wrapped between words at ``width``."""
    texts = [cell for cell in cells if isinstance(cell, Text)]
    widest = max((line.cell_len for text in texts for line in text.wrap(console, width, overflow="fold")), default=0)
    return max(1, min(width, widest)) if len(texts) == len(cells) else width


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` so that nothing in it is cut off, however narrow the console.

    A table wider than the console is squeezed by rich, which shrinks the widest columns first and ends
    their cells with "…" (or, with overflow="fold", breaks ids in the middle). Instead: the table as it is
    when it fits; else columns give up their spare width (min_width), then wrap between words, each keeping
    at least its longest word; else (a very narrow console) one block per row, a "header: value" line per
    further cell.
    """
    options = console.options
    natural = Measurement.get(console, options.update_width(10_000), table).maximum
    if natural <= options.max_width:
        console.print(table)
        return
    columns = [[console.render_str(cell) if isinstance(cell, str) else cell for cell in (column.header, *column.cells)]
               for column in table.columns]
    least = [max(_least_width(console, cell) for cell in cells) for cells in columns]
    content = [max(low, *(Measurement.get(console, options, cell).maximum for cell in cells))
               for low, cells in zip(least, columns, strict=True)]
    widths = [max(high, column.min_width or 0) for high, column in zip(content, table.columns, strict=True)]
    available = options.max_width - (natural - sum(widths))
    if sum(least) <= available:
        while sum(widths) > available and widths != content:  # spare width (min_width) first, evenly
            index = max(range(len(widths)), key=lambda i: widths[i] - content[i])
            widths[index] -= 1
        while sum(widths) > available:  # then wrap the column with the most room, at its next word break
            index = max(range(len(widths)), key=lambda i: widths[i] - least[i])
            widths[index] = _wrapped_width(console, columns[index], widths[index] - 1)
        for column, width in zip(table.columns, widths, strict=True):
            column.width, column.no_wrap, column.overflow = width, False, "fold"
        if Measurement.get(console, options.update_width(10_000), table).maximum <= options.max_width:
            console.print(table)
            return
    headers = [console.render_str(column.header).plain.replace("\n", " ").strip()
               if isinstance(column.header, str) else "" for column in table.columns]
    for row in zip(*(column.cells for column in table.columns), strict=True):
        first = row[0]
        console.print(first.strip() if isinstance(first, str) else first)
        for header, cell in zip(headers[1:], row[1:], strict=True):
            line = Text(f"  {header}: ")
            line.append_text(console.render_str(cell) if isinstance(cell, str) else Text(str(cell)))
            console.print(line)


def wrap_words(text: str, width: int, indent: str = "", hanging: str | None = None) -> list[str]:
    """``text`` wrapped at ``width`` between words only, each line of it on its own: a word (a path, a
    symbol, a command) is never broken nor cut; one longer than the room gets a line of its own, longer
    than ``width``. Continuation lines get ``hanging`` (default: ``indent`` plus the line's own leading
    spaces). A command quoted in backquotes (`like this`) is one word: it is not broken between lines."""
    import re
    import textwrap

    glue = "\x00"  # stands for a space inside backquotes while wrapping (textwrap breaks at ASCII spaces only)
    lines: list[str] = []
    for line in text.splitlines() or [""]:
        own = line[:len(line) - len(line.lstrip(" "))]
        wrapper = textwrap.TextWrapper(width=max(1, width), initial_indent=indent + own,
                                       subsequent_indent=hanging if hanging is not None else indent + own,
                                       break_long_words=False, break_on_hyphens=False)
        glued = re.sub(r"`[^`]*`", lambda quoted: quoted.group(0).replace(" ", glue), line.lstrip(" "))
        lines.extend(wrapped.replace(glue, " ") for wrapped in wrapper.wrap(glued) or [indent + own])
    return lines


def print_lines(console: Console, lines: list[str], style: str = "") -> None:
    """Print ``lines`` as they are: no wrapping, no "…", no markup, however narrow the console (a line
    longer than it is left to the terminal to fold, and stays one line when copied)."""
    for line in lines:
        console.print(Text(line, style=style), soft_wrap=True, crop=False, no_wrap=True, overflow="ignore")


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
        print_table(console, table)
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
    for line in bar_chart_lines(comparison.bars, width=_bar_width(console, comparison.bars)):
        console.print(line, highlight=False)


def _bar_width(console: Console, bars: list[ModeBar], unit: str = "ms") -> int:
    """The bars' length: at most 40, less where the figures after them would not fit the console."""
    if not bars:
        return 40
    beside = max(len(line) for line in bar_chart_lines(bars, width=0, unit=unit)[1:]) + 1
    return max(8, min(40, console.options.max_width - beside))


def render_run_list(console: Console, listings: list[RunListing]) -> None:
    # profile and target share a column, status and validity another: the table then fits 80 columns
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for column in ("run", "profile / target", "modes", "status", "date"):
        table.add_column(column, overflow="fold")
    for listing in listings:
        when = datetime.fromtimestamp(listing.created_wall).strftime("%Y-%m-%d %H:%M") if listing.created_wall else ""
        valid = "valid" if listing.valid else "[red]not valid[/]"
        table.add_row(listing.run_id + (" (sim)" if listing.simulated else ""),
                      f"{listing.profile_name or '?'} / {listing.target_name or '?'}", ", ".join(listing.modes),
                      f"{listing.status}, {valid}", when)
    print_table(console, table)


def _trial_line(trial: TrialAnalysis) -> list[str]:
    high, low = trial.high, trial.low
    p50 = f"{high.latency_ms.p50:.2f}" if high and high.latency_ms.p50 is not None else "n/a"
    p99 = f"{high.latency_ms.p99:.2f}" if high and high.latency_ms.p99 is not None else "n/a"
    rate = f"{high.achieved_rate:.2f}" if high else "n/a"
    if high and high.target_rate:
        rate += f"/{high.target_rate:g}"
    low_rate = f"{low.iter_per_s:.2f}" if low else "-"
    samples = str(high.latency_ms.count) if high else "0"
    shim = " ".join(f"{role}:{'yes' if ev.shim_mapped else 'no'}" for role, ev in sorted(trial.roles.items()))
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
    # headers wrap between words and the shim cell ("high:yes low:no") between roles; print_table never cuts
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for column in ("trial", "P50 ms", "P99 ms", "rate / target", "low iter/s", "samples", "shim", "valid"):
        table.add_column(column, justify="right" if column not in ("trial", "shim", "valid") else "left",
                         overflow="fold")
    for trial in result.trials:
        table.add_row(*_trial_line(trial))
    print_table(console, table)
    for mode, summary in result.modes.items():
        console.print(f"{mode}: P99 {summary.p99_ms.describe()} ms, P50 {summary.p50_ms.describe()} ms, "
                      f"rate {summary.achieved_rate.describe()} req/s, low {summary.low_iter_per_s.describe()} iter/s"
                      + ("" if summary.load_sustained else " [bold red]LOAD NOT SUSTAINED[/]"))
    for finding in result.findings:
        console.print(f"[red]{finding.severity}[/] {finding.message}")
    for trial in result.trials:
        if trial.meta is not None and trial.meta.scheduler is not None:
            view = trial.meta.scheduler
            if view.available:
                seen = "; ".join(f"{role} (pid {ev.pid}): {role_summary(ev.scheduler_connected, ev.scheduler_priorities)}"
                                 for role, ev in sorted(trial.roles.items()))
                console.print(f"  {trial.trial_id}: the xserver saw: {seen}; it ended on {view.xserver_end}",
                              markup=False)
            else:
                console.print(f"  {trial.trial_id}: the scheduler's view is not available: {view.note}", markup=False)
        for finding in trial.findings:
            if finding.severity == "note" and finding.code == "simulated":
                continue
            style = {"error": "bold red", "warning": "yellow"}.get(finding.severity, "dim")
            console.print(f"  {trial.trial_id}: [{style}]{finding.severity}[/] {finding.message}")
