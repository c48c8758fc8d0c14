"""The report of a sweep: ``xsched-ops report SWEEP_DIR``. One self-contained HTML file (plots embedded)
or Markdown with PNGs beside it: the plan, a table of every cell and mode (P50, P99 with its interval
and the P99 rule's verdict, achieved against offered rate, low-priority throughput), what the
sampling rule did not get, the curves, and for sweeps over XSched settings the Pareto front with
the recommended setting."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from xsched_ops.errors import ResultsError, UsageError
from xsched_ops.report.build import _CSS, FORMATS, _output_file, _write_output
from xsched_ops.sweep.manifest import MANIFEST
from xsched_ops.sweep.sampling import rule_verdict
from xsched_ops.sweep.table import SweepTable, Tuning, load_sweep, tuning

SIMULATED_BANNER = "SIMULATED DEVICE: these numbers come from the sim backend, not from a GPU"


def is_sweep_dir(path: Path | str) -> bool:
    """A folder with a sweep manifest (what ``report`` takes as a sweep rather than a run)."""
    return (Path(path) / MANIFEST).is_file()


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(interval) -> str:
    if interval.mean is None:
        return "-"
    if interval.low is None or interval.high is None:
        return f"{interval.mean:.2f}"
    return f"{interval.mean:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def _estimates(sampling: dict | None) -> str:
    """LoadGen's P99 estimate of each repeat ("-" for a repeat below 662 requests)."""
    values = (sampling or {}).get("p99_estimate_ms") or []
    return ", ".join("-" if value is None else f"{value:.2f}" for value in values) or "-"


def table_rows(table: SweepTable) -> list[list[str]]:
    """Cell, mode, P50, P99 [95% CI], P99 rule, P99 estimates, achieved/offered, sustained, low iter/s, window, status."""
    rows = []
    for points in table.lines().values():
        for point in points:
            summary = point.summary
            offered = f"{summary.target_rate:g}" if summary.target_rate else "-"
            record = table.manifest.cells[point.cell_id]
            rows.append([point.cell_id, point.mode, _interval(summary.p50_ms), _interval(summary.p99_ms),
                         rule_verdict(point.sampling, short=False), _estimates(point.sampling), f"{_number(summary.achieved_rate.mean)} / {offered}",
                         "yes" if summary.load_sustained else "NO", _interval(summary.low_iter_per_s),
                         f"{record.duration_s:g} s" if record.duration_s else "-", point.status])
    return rows


HEADERS = ["cell", "mode", "P50 ms", "P99 ms [95% CI]", "P99 rule", "P99 early-stopping estimate ms", "achieved / offered req/s", "sustained",
           "low iter/s", "window", "status"]


def unmet_lines(table: SweepTable) -> list[str]:
    lines = []
    for cell_id in table.manifest.order:
        sampling = table.manifest.cells[cell_id].sampling or {}
        lines.extend(f"{cell_id}: {line}" for line in sampling.get("unmet") or [])
    return lines


def plan_facts(table: SweepTable) -> list[tuple[str, str]]:
    manifest = table.manifest
    grid = "; ".join(f"{key} = {', '.join(values)}" for key, values in manifest.grid.items())
    facts = [("sweep", str(table.folder)), ("profile", manifest.profile), ("grid", grid),
             ("modes", ", ".join(manifest.modes)), ("repeats", str(manifest.repeat)),
             ("seed (cell order)", str(manifest.seed)), ("backend", manifest.backend),
             ("cells", f"{len(manifest.order)} ({sum(r.status == 'valid' for r in manifest.cells.values())} valid)")]
    if table.sla_ms:
        facts.append(("SLA", f"{table.sla_ms:g} ms"))
    if manifest.max_duration_s:
        facts.append(("window cap", f"{manifest.max_duration_s:g} s"))
    if manifest.target_interval_pct:
        facts.append(("P99 interval target", f"+/-{manifest.target_interval_pct:g} %"))
    facts.append(("P99 rule", "MLPerf LoadGen early stopping: enough requests for P99 within the SLA at 99 % "
                              "confidence, given how many exceeded it"))
    return facts


def tuning_rows(result: Tuning) -> list[list[str]]:
    return [[point.setting, _number(point.p99_ms), _number(point.low_iter_per_s, 3), f"{point.loss_pct:.1f}",
             "yes" if point.meets_sla else "no", "yes" if point.on_front else "no",
             point.rule] for point in result.points]


TUNING_HEADERS = ["setting", "P99 ms (xsched)", "low iter/s", "loss %", "meets SLA", "on front", "P99 rule"]


def _e(value: object) -> str:
    return html.escape(str(value))


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(table: SweepTable, tunings: list[Tuning], plots: dict[str, tuple[str, bytes]]) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>xsched-ops sweep "
             f"{_e(table.manifest.profile)}</title><style>{_CSS}</style></head><body>"]
    if table.simulated:
        parts.append(f"<div class='banner'>{_e(SIMULATED_BANNER)}</div>")
    parts.append(f"<h1>Sweep of {_e(table.manifest.profile)} over {_e(', '.join(table.axes))}</h1>")
    for result in tunings:
        parts.append(f"<p class='verdict' style='border-color:#1b7f3b'>{_e(result.verdict)}</p>")
    parts.append(_html_table(["", ""], [[key, value] for key, value in plan_facts(table)]))
    parts.append("<h2>Cells</h2>" + _html_table(HEADERS, table_rows(table)))
    unmet = unmet_lines(table)
    if unmet:
        parts.append("<h2>Not met</h2><ul>" + "".join(f"<li class='warning'>{_e(line)}</li>" for line in unmet)
                     + "</ul>")
    if table.problems:
        parts.append("<h2>Cells without results</h2><ul>"
                     + "".join(f"<li class='error'>{_e(line)}</li>" for line in table.problem_lines()) + "</ul>")
    parts.append("<h2>Curves</h2>")
    for caption, png in plots.values():
        encoded = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img class='plot' alt='{_e(caption)}' src='data:image/png;base64,{encoded}'>"
                     f"<figcaption>{_e(caption)}</figcaption></figure>")
    for result in tunings:
        parts.append(f"<h2>XSched settings{(' at ' + _e(result.group)) if result.group else ''}</h2>"
                     f"<p>Loss against {_e(result.reference)}.</p>" + _html_table(TUNING_HEADERS, tuning_rows(result)))
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(row) for row in rows)])


def render_markdown(table: SweepTable, tunings: list[Tuning], images: dict[str, tuple[str, str]]) -> str:
    parts = []
    if table.simulated:
        parts.append(f"**{SIMULATED_BANNER}**\n")
    parts.append(f"# Sweep of {table.manifest.profile} over {', '.join(table.axes)}\n")
    parts.extend(f"**{result.verdict}**\n" for result in tunings)
    parts.append(_md_table(["", ""], [[key, value] for key, value in plan_facts(table)]) + "\n")
    parts.append("## Cells\n\n" + _md_table(HEADERS, table_rows(table)) + "\n")
    unmet = unmet_lines(table)
    if unmet:
        parts.append("## Not met\n\n" + "\n".join(f"- {line}" for line in unmet) + "\n")
    if table.problems:
        parts.append("## Cells without results\n\n" + "\n".join(f"- {line}" for line in table.problem_lines()) + "\n")
    parts.append("## Curves\n")
    parts.extend(f"![{caption}]({file_name})\n\n{caption}\n" for caption, file_name in images.values())
    for result in tunings:
        parts.append(f"## XSched settings{(' at ' + result.group) if result.group else ''}\n\n"
                     f"Loss against {result.reference}.\n\n" + _md_table(TUNING_HEADERS, tuning_rows(result)) + "\n")
    return "\n".join(parts)


def build_sweep_report(sweep_dir: Path | str, out: Path | str | None = None, fmt: str = "html") -> Path:
    """Write the report of the sweep in ``sweep_dir`` to ``out`` (a file, or a folder: ``out/report.<fmt>``;
    default ``SWEEP_DIR/report.<fmt>``). A folder without a sweep is a one-line ResultsError (exit 23)."""
    from xsched_ops.report.sweep_plots import sweep_plots

    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r} (formats: {', '.join(FORMATS)})")
    table = load_sweep(sweep_dir)
    if not table.points:
        raise ResultsError(f"sweep {sweep_dir} has no cell with a valid result yet",
                           "run the sweep (the same command resumes it), then report it")
    path = _output_file(Path(sweep_dir) / f"report.{fmt}" if out is None else out, fmt)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ResultsError(f"cannot write the report to {path}: cannot make {path.parent} ({err.strerror or err})",
                           "choose another --out file or folder") from None
    tunings = tuning(table)
    plots = sweep_plots(table, tunings)
    if fmt == "html":
        _write_output(path, render_html(table, tunings, plots))
        return path
    images = {}
    for name, (caption, png) in plots.items():
        file_name = f"{path.stem}-{name}.png"
        _write_output(path.parent / file_name, png)
        images[name] = (caption, file_name)
    _write_output(path, render_markdown(table, tunings, images))
    return path
