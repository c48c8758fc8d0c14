"""Terminal rendering, in one place: every table, tree, wrapped block and message the commands print.

The rule they all follow: nothing a user may copy (a path, a symbol, a command, a run id) is ever cut,
ellipsised or broken in the middle, at any width, in a terminal or a pipe. Prose wraps between words; a
word longer than the room gets a line of its own, longer than the console, which the terminal folds (and
which stays one line when copied). A table that cannot fit whole becomes one block per row.

Imported only by commands that print (it imports rich, and the results package only inside the functions
that render runs); the plain-text pieces the HTML report shares (``format_value``, ``format_change``,
``bar_chart_lines``) live in ``xsched_ops.results.render``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from xsched_ops.results.compare import Comparison, ComparisonRow, ModeBar
    from xsched_ops.results.models import RunResult, TrialAnalysis
    from xsched_ops.results.store import RunListing

TIER_STYLE = {"excellent": "bold green", "good": "green", "acceptable": "yellow", "fail": "bold red"}
# A word: a run of non-spaces, where a command quoted in backquotes (`like this`) counts as one word.
_WORD = re.compile(r"(?:`[^`]*`|\S)+")
UNLIMITED = 1_000_000  # the width of a pipe for what must stay one line per item (ldd's tree)


# -- words, lines, messages ------------------------------------------------------------------------

def wrap_text(text: Text | str, width: int, indent: str = "", hanging: str | None = None) -> list[Text]:
    """``text`` wrapped at ``width`` between words only, each of its lines on its own, styles kept.

    A word (a path, a symbol, a backquoted command) is never broken nor cut: one longer than the room gets
    a line of its own, longer than ``width``. Continuation lines start with ``hanging`` (default:
    ``indent`` plus the line's own leading spaces)."""
    text = Text(text) if isinstance(text, str) else text
    plain = text.plain
    parts = plain.split("\n")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # like str.splitlines: a final newline ends the last line, it does not open one
    lines: list[Text] = []
    offset = 0
    for part in parts:
        line = text[offset:offset + len(part)]
        offset += len(part) + 1
        own = part[:len(part) - len(part.lstrip(" "))]
        prefix, rest = indent + own, hanging if hanging is not None else indent + own
        words = [(match.start(), match.end()) for match in _WORD.finditer(part)]
        if not words:
            lines.append(Text(prefix))
            continue
        start, end = words[0]
        for word_start, word_end in words[1:]:
            if cell_len(prefix) + cell_len(part[start:word_end]) <= width:
                end = word_end
                continue
            lines.append(Text(prefix) + line[start:end])
            prefix, start, end = rest, word_start, word_end
        lines.append(Text(prefix) + line[start:end])
    return lines


def wrap_words(text: str, width: int, indent: str = "", hanging: str | None = None) -> list[str]:
    """``wrap_text`` for plain strings: the wrapped lines as strings."""
    return [line.plain for line in wrap_text(text, max(1, width), indent, hanging)]


def print_lines(console: Console, lines: list[str] | list[Text], style: str = "") -> None:
    """Print ``lines`` as they are: no wrapping, no "…", no markup, however narrow the console (a line
    longer than it is left to the terminal to fold, and stays one line when copied)."""
    for line in lines:
        text = Text(line, style=style) if isinstance(line, str) else line
        if style and not isinstance(line, str):
            text = text.copy()
            text.stylize_before(style)  # the line's own styles win
        console.print(text, soft_wrap=True, crop=False, no_wrap=True, overflow="ignore")


def print_wrapped(console: Console, text: Text | str, indent: str = "", hanging: str | None = None,
                  style: str = "") -> None:
    """``text`` wrapped between words at the console's width (see ``wrap_text``), never cut."""
    text = Text(text) if isinstance(text, str) else text.copy()
    if style:
        text.stylize_before(style)  # the text's own styles win
    print_lines(console, wrap_text(text, console.width, indent, hanging))


def message(console: Console, text: str, style: str = "") -> None:
    """A message as it is: no markup (a ``[a-z]`` in it stays), no highlighting, never cut."""
    print_wrapped(console, Text(text, style=style), "", "  ")


# -- tables ----------------------------------------------------------------------------------------

def _least_width(console: Console, cell: object) -> int:
    """The narrowest a cell can be without breaking a word (its indentation counts, which rich's measure skips)."""
    text = console.render_str(cell) if isinstance(cell, str) else cell
    if not isinstance(text, Text):
        return Measurement.get(console, console.options, text).minimum
    least = 1
    for line in text.plain.splitlines():
        words = _WORD.findall(line)
        if words:
            indent = len(line) - len(line.lstrip())
            least = max(least, indent + cell_len(words[0]), *(cell_len(word) for word in words))
    return least


def _wrapped_width(console: Console, cells: list, width: int) -> int:
    """The width the cells take once wrapped between words at ``width``."""
    texts = [cell for cell in cells if isinstance(cell, Text)]
    widest = max((line.cell_len for text in texts for line in wrap_text(text, width)), default=0)
    return max(1, min(width, widest)) if len(texts) == len(cells) else width


def plain_table(*headers: str) -> Table:
    """A table in the project's style (no outer box, a rule under the headers); print it with ``print_table``."""
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` so that nothing in it is cut off, however narrow the console.

    A table wider than the console is squeezed by rich, which shrinks the widest columns first and ends
    their cells with "…" (or, with overflow="fold", breaks ids in the middle). Instead: the table as it is
    when it fits; else columns give up their spare width (min_width), then wrap between words, each keeping
    at least its longest word; else (a very narrow console) one block per row: the first cell, then a
    "header: value" line per further cell, wrapped between words.
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
        first = console.render_str(row[0]) if isinstance(row[0], str) else row[0]
        first = first if isinstance(first, Text) else Text(str(first))
        first = first[len(first.plain) - len(first.plain.lstrip()):]
        print_lines(console, wrap_text(first, console.width, "", "  "))
        for header, cell in zip(headers[1:], row[1:], strict=True):
            line = Text(f"  {header}: ")
            line.append_text(console.render_str(cell) if isinstance(cell, str) else
                             cell if isinstance(cell, Text) else Text(str(cell)))
            print_lines(console, wrap_text(line, console.width, "", "    "))


# -- trees -----------------------------------------------------------------------------------------

@dataclass
class TreeNode:
    """A node of a tree printed by ``tree_lines``: its label and its children, in order."""

    label: Text
    children: list[TreeNode] = field(default_factory=list)

    def add(self, label: Text) -> TreeNode:
        child = TreeNode(label)
        self.children.append(child)
        return child


def tree_lines(root: TreeNode, width: int) -> list[Text]:
    """The tree as lines, with rich's guides (``├── ``, ``└── ``, ``│   ``); a label longer than the room
    wraps between words under its own guide, indented two more spaces, and is never cropped."""
    lines = wrap_text(root.label, width, "", "  ")

    def walk(node: TreeNode, guides: str) -> None:
        for index, child in enumerate(node.children):
            last = index == len(node.children) - 1
            below = guides + ("    " if last else "│   ")
            for number, line in enumerate(wrap_text(child.label, max(1, width - len(below)), "", "  ")):
                lead = guides + ("└── " if last else "├── ") if number == 0 else below
                lines.append(Text.assemble((lead, "dim"), line))  # only the guide is dim
            walk(child, below)

    walk(root, "")
    return lines


# -- runs and comparisons --------------------------------------------------------------------------

def simulated_banner(console: Console) -> None:
    print_wrapped(console, Text.assemble(("SIMULATED", "bold black on yellow"), " backend sim: not a GPU measurement"),
                  "", "  ")


def _row_cells(row: ComparisonRow) -> tuple[str, str, str]:
    from xsched_ops.results.render import format_change, format_value

    digits = 1 if row.unit == "%" else 2
    return format_value(row.baseline, digits), format_value(row.xsched, digits), format_change(row.change_pct)


def render_comparison(console: Console, comparison: Comparison) -> None:
    """The seed's layout: a high-priority and a low-priority section, change %, then the verdict."""
    from xsched_ops.results.render import bar_chart_lines

    if comparison.simulated:
        simulated_banner(console)
    print_wrapped(console, Text(comparison.title, style="bold"))
    repeats = f"repeats: baseline n={comparison.repeats_baseline}, XSched n={comparison.repeats_xsched}"
    if comparison.repeats_baseline > 1 or comparison.repeats_xsched > 1:
        repeats += "; values are means ± half-width of the 95 % interval"
    print_wrapped(console, Text(repeats, style="dim"))
    high_name = (comparison.high_model or "high priority").split(":")[-1]
    rate = f", {comparison.target_rate:g} req/s" if comparison.target_rate else ""
    low_name = (comparison.low_model or "low priority").split(":")[-1]
    batch = f", batch={comparison.low_batch}" if comparison.low_batch else ""
    for section, heading in (("high", f"High Priority Task ({high_name}{rate}):"),
                             ("low", f"Low Priority Task ({low_name}{batch}):")):
        print_wrapped(console, Text(heading, style="bold"))
        table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1))
        table.add_column("  Metric", no_wrap=True, min_width=26)
        table.add_column("Baseline", justify="right", no_wrap=True, min_width=15)
        table.add_column("XSched", justify="right", no_wrap=True, min_width=15)
        table.add_column("Change", justify="right", no_wrap=True, min_width=8)
        for row in comparison.rows:
            if row.section == section:
                table.add_row(Text(f"  {row.metric} ({row.unit})"), *(Text(cell) for cell in _row_cells(row)))
        print_table(console, table)
    tier_style = TIER_STYLE.get(comparison.tier, "bold")
    print_wrapped(console, Text(comparison.verdict, style=tier_style))
    criteria = ", ".join(f"{t.name} P99<{t.p99_below_ms:g}ms, improvement>{t.p99_improvement_above_pct:g}%, "
                         f"loss<{t.low_loss_below_pct:g}%" for t in comparison.criteria.tiers)
    print_wrapped(console, Text.assemble("tier: ", (comparison.tier.upper(), tier_style),
                                         f"  (latency {comparison.high_latency_tier}, low-priority throughput "
                                         f"{comparison.low_throughput_tier}; criteria: {criteria})"), "", "  ")
    for warning in comparison.warnings:
        style = "bold red" if warning.startswith("LOAD NOT SUSTAINED") else "yellow"
        print_wrapped(console, Text(f"! {warning}", style=style), "", "  ")
    console.print()
    for line in bar_chart_lines(comparison.bars, width=_bar_width(console, comparison.bars)):
        print_wrapped(console, line, "", "    ")


def _bar_width(console: Console, bars: list[ModeBar], unit: str = "ms") -> int:
    """The bars' length: at most 40, less where the figures after them would not fit the console."""
    from xsched_ops.results.render import bar_chart_lines

    if not bars:
        return 40
    beside = max(len(line) for line in bar_chart_lines(bars, width=0, unit=unit)[1:]) + 1
    return max(8, min(40, console.options.max_width - beside))


def render_run_list(console: Console, listings: list[RunListing]) -> None:
    # profile and target share a column, status and validity another: the table then fits 80 columns
    table = plain_table("run", "profile / target", "modes", "status", "date")
    for listing in listings:
        when = datetime.fromtimestamp(listing.created_wall).strftime("%Y-%m-%d %H:%M") if listing.created_wall else ""
        status = Text(f"{listing.status}, ")
        status.append("valid" if listing.valid else "not valid", style="" if listing.valid else "red")
        table.add_row(Text(listing.run_id + (" (sim)" if listing.simulated else "")),
                      Text(f"{listing.profile_name or '?'} / {listing.target_name or '?'}"),
                      Text(", ".join(listing.modes)), status, Text(when))
    print_table(console, table)
    for listing in listings:
        if listing.problem:
            message(console, f"damaged {listing.run_dir}: {listing.problem}")


def _trial_cells(trial: TrialAnalysis) -> list[Text]:
    high, low = trial.high, trial.low
    p50 = f"{high.latency_ms.p50:.2f}" if high and high.latency_ms.p50 is not None else "n/a"
    p99 = f"{high.latency_ms.p99:.2f}" if high and high.latency_ms.p99 is not None else "n/a"
    rate = f"{high.achieved_rate:.2f}" if high else "n/a"
    if high and high.target_rate:
        rate += f"/{high.target_rate:g}"
    low_rate = f"{low.iter_per_s:.2f}" if low else "-"
    samples = str(high.latency_ms.count) if high else "0"
    shim = " ".join(f"{role}:{'yes' if ev.shim_mapped else 'no'}" for role, ev in sorted(trial.roles.items()))
    valid = Text("yes") if trial.valid else Text("NO", style="bold red")
    return [Text(cell) for cell in (trial.trial_id, p50, p99, rate, low_rate, samples, shim)] + [valid]


def render_run(console: Console, result: RunResult) -> None:
    from xsched_ops.results.scheduler_view import role_summary

    meta = result.meta
    header = Text.assemble((f"run {result.run_id}", "bold"), f": status {result.status}, ",
                           ("valid", "") if result.valid else ("INVALID", "bold red"))
    if meta:
        header.append(f"; profile {meta.profile_name}, target {meta.target_name}")
    print_wrapped(console, header, "", "  ")
    if result.simulated:
        simulated_banner(console)
    # headers wrap between words and the shim cell ("high:yes low:no") between roles; print_table never cuts
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for column in ("trial", "P50 ms", "P99 ms", "rate / target", "low iter/s", "samples", "shim", "valid"):
        table.add_column(column, justify="right" if column not in ("trial", "shim", "valid") else "left",
                         overflow="fold")
    for trial in result.trials:
        table.add_row(*_trial_cells(trial))
    print_table(console, table)
    for mode, summary in result.modes.items():
        line = Text(f"{mode}: P99 {summary.p99_ms.describe()} ms, P50 {summary.p50_ms.describe()} ms, "
                    f"rate {summary.achieved_rate.describe()} req/s, low {summary.low_iter_per_s.describe()} iter/s")
        if not summary.load_sustained:
            line.append(" LOAD NOT SUSTAINED", style="bold red")
        print_wrapped(console, line, "", "  ")
    for finding in result.findings:
        print_wrapped(console, Text.assemble((finding.severity, "red"), f" {finding.message}"), "", "  ")
    for trial in result.trials:
        if trial.meta is not None and trial.meta.scheduler is not None:
            view = trial.meta.scheduler
            if view.available:
                seen = "; ".join(f"{role} (pid {ev.pid}): {role_summary(ev.scheduler_connected, ev.scheduler_priorities)}"
                                 for role, ev in sorted(trial.roles.items()))
                print_wrapped(console, f"  {trial.trial_id}: the xserver saw: {seen}; it ended on {view.xserver_end}",
                              "", "    ")
            else:
                print_wrapped(console, f"  {trial.trial_id}: the scheduler's view is not available: {view.note}",
                              "", "    ")
        for finding in trial.findings:
            if finding.severity == "note" and finding.code == "simulated":
                continue
            style = {"error": "bold red", "warning": "yellow"}.get(finding.severity, "dim")
            print_wrapped(console, Text.assemble(f"  {trial.trial_id}: ", (finding.severity, style),
                                                 f" {finding.message}"), "", "    ")
