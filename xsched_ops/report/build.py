"""The report: one self-contained HTML file (plots embedded as base64 PNG), or Markdown with PNGs beside it."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from xsched_ops.errors import ResultsError, UsageError
from xsched_ops.report.data import ReportData, gather
from xsched_ops.report.plots import all_plots
from xsched_ops.results.compare import Comparison
from xsched_ops.results.models import Interval, RunResult, TrialAnalysis
from xsched_ops.results.render import bar_chart_lines, format_change, format_value
from xsched_ops.results.scheduler_view import role_summary

FORMATS = ("html", "md")
TIER_COLORS = {"excellent": "#1b7f3b", "good": "#3f9b4f", "acceptable": "#b7860b", "fail": "#b3261e"}

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1d1d1f; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #d0d0d0; padding: .25em .6em; vertical-align: top; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.banner { background: #ffd400; color: #000; font-weight: bold; padding: .6em 1em; font-size: 1.2em;
          border: 2px solid #000; margin-bottom: 1em; }
.verdict { font-size: 1.15em; font-weight: bold; padding: .6em 1em; border-left: 6px solid; background: #f7f7f7; }
.refused { background: #fdecea; border-left: 6px solid #b3261e; padding: .6em 1em; }
.warning { color: #8a4b00; } .error { color: #b3261e; font-weight: bold; } .note { color: #555; }
.invalid { background: #fdecea; } .section td { font-weight: bold; background: #fafafa; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; font-size: .85em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; }
img.plot { max-width: 100%; border: 1px solid #eee; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _when(wall: float | None) -> str:
    return datetime.fromtimestamp(wall).strftime("%Y-%m-%d %H:%M:%S") if wall else "?"


# --------------------------------------------------------------------------- shared content as rows


def comparison_rows(comparison: Comparison) -> list[tuple[str, str, str, str] | str]:
    """The seed's table: section headers (plain strings) and (metric, baseline, xsched, change) rows."""
    rows: list[tuple[str, str, str, str] | str] = []
    high = (comparison.high_model or "high priority").split(":")[-1]
    rate = f", {comparison.target_rate:g} req/s" if comparison.target_rate else ""
    low = (comparison.low_model or "low priority").split(":")[-1]
    batch = f", batch={comparison.low_batch}" if comparison.low_batch else ""
    for section, title in (("high", f"High Priority Task ({high}{rate})"), ("low", f"Low Priority Task ({low}{batch})")):
        rows.append(title)
        for row in comparison.rows:
            if row.section == section:
                digits = 1 if row.unit == "%" else 2
                rows.append((f"{row.metric} ({row.unit})", format_value(row.baseline, digits),
                             format_value(row.xsched, digits), format_change(row.change_pct)))
    return rows


def trial_rows(data: ReportData) -> list[tuple[TrialAnalysis, list[str]]]:
    rows = []
    for run in data.runs:
        for trial in run.trials:
            high, low = trial.high, trial.low
            rate = "n/a"
            if high is not None:
                rate = f"{high.achieved_rate:.2f}" + (f" / {high.target_rate:g}" if high.target_rate else "")
            rows.append((trial, [
                run.run_id, trial.trial_id, trial.mode, str(trial.repeat),
                trial.meta.status if trial.meta else "no record",
                str(high.latency_ms.count) if high else "0",
                _fmt(high.latency_ms.p50 if high else None), _fmt(high.latency_ms.p99 if high else None),
                rate, ("yes" if high.load_sustained else "NO") if high else "n/a",
                _fmt(low.iter_per_s if low else None),
                "yes" if trial.simulated else "no",
                "valid" if trial.valid else "INVALID",
            ]))
    return rows


TRIAL_HEADERS = ["run", "trial", "mode", "repeat", "status", "samples", "P50 ms", "P99 ms", "rate / target",
                 "load sustained", "low iter/s", "simulated", "validity"]


def environment_rows(data: ReportData) -> list[list[str]]:
    """Per mode (its first trial) and role: what was set, what the process saw, the shim evidence."""
    rows = []
    for group in data.groups:
        trial = group.series[0].trial if group.series else None
        if trial is None:
            continue
        for role, evidence in sorted(trial.roles.items()):
            shim = ("mapped: " + ", ".join(evidence.shim_paths)) if evidence.shim_mapped else (
                "not mapped" if evidence.shim_mapped is False else "unknown")
            if evidence.runtime is not None:
                runtime = evidence.runtime
                source = runtime.library or "the process"
                shim += (f"; {runtime.init_symbol} from {source}: {runtime.init_defined_in_real or '?'} returned "
                         f"{runtime.init_result}; runtime files mapped: {', '.join(runtime.mapped_files) or '-'}")
            sim = "" if evidence.sim_xsched_active is None else (
                f"{'active' if evidence.sim_xsched_active else 'inactive'}"
                + (f" ({evidence.sim_reason})" if evidence.sim_reason else ""))
            rows.append([
                group.label, role, evidence.model or "?",
                " ".join(f"{k}={v}" for k, v in sorted(evidence.configured_env.items())) or "-",
                " ".join(f"{k}={v}" for k, v in sorted(evidence.xsched_env.items())) or "-",
                evidence.ld_preload or "-", evidence.ld_library_path or "-", shim, sim or "-",
                role_summary(evidence.scheduler_connected, evidence.scheduler_priorities),
            ])
    return rows


ENV_HEADERS = ["mode", "role", "model", "environment set", "XSCHED_* seen", "LD_PRELOAD", "LD_LIBRARY_PATH",
               "shim", "sim device", "xserver saw"]


def _interval_text(interval: Interval) -> str:
    return interval.describe()


def spread_rows(data: ReportData) -> list[list[str]]:
    rows = []
    for group in data.groups:
        summary = group.run.modes.get(group.mode)
        if summary is None:
            continue
        rows.append([group.label, f"{len(summary.valid_trials)}/{len(summary.trials)}",
                     _interval_text(summary.p50_ms), _interval_text(summary.p99_ms),
                     _interval_text(summary.achieved_rate), _interval_text(summary.low_iter_per_s),
                     ", ".join(f"{value:.2f}" for value in summary.p99_ms.values) or "-"])
    return rows


SPREAD_HEADERS = ["mode", "valid repeats", "P50 ms", "P99 ms", "achieved req/s", "low iter/s", "P99 of each repeat"]


def verdict_text(data: ReportData) -> str:
    if data.comparison is not None:
        return data.comparison.verdict
    return f"No verdict: {data.comparison_problem}"


# --------------------------------------------------------------------------- HTML


def _table(headers: list[str], rows: list[list[str]], row_class: Callable[[int], str] | None = None) -> str:
    head = "".join(f"<th>{_e(header)}</th>" for header in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{row_class(index)}"' if row_class and row_class(index) else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _kv_table(values: dict) -> str:
    rows = [[str(key), json.dumps(value) if isinstance(value, dict | list) else str(value)]
            for key, value in values.items()]
    return _table(["fact", "value"], rows) if rows else "<p>none recorded</p>"


def _run_facts_html(run: RunResult) -> str:
    meta = run.meta
    parts = [f"<h3>Run {_e(run.run_id)}</h3>"]
    if meta is None:
        parts.append('<p class="error">no run record (run.json)</p>')
        return "".join(parts)
    parts.append(f"<p>profile <b>{_e(meta.profile_name)}</b>, target <b>{_e(meta.target_name)}</b>, "
                 f"started {_e(_when(meta.created_wall))}, status {_e(run.status)}</p>")
    parts.append("<p>command: <code>" + _e(" ".join(meta.command_line) or "?") + "</code></p>")
    parts.append("<h4>XSched</h4>" + _kv_table(meta.xsched.model_dump()))
    parts.append("<h4>Target facts</h4>" + _kv_table(meta.target))
    parts.append("<h4>Doctor summary</h4>")
    parts.append(f"<pre>{_e(json.dumps(meta.doctor, indent=2))}</pre>" if meta.doctor is not None
                 else "<p>doctor did not run for this run</p>")
    parts.append("<details><summary>Resolved profile</summary>"
                 f"<pre>{_e(json.dumps(meta.profile, indent=2))}</pre></details>")
    return "".join(parts)


def render_html(data: ReportData, plots: dict[str, tuple[str, bytes]]) -> str:
    title = data.comparison.title if data.comparison else "xsched-ops report"
    out = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>",
           f"<style>{_CSS}</style></head><body>"]
    if data.simulated:
        out.append('<div class="banner" id="simulated-banner">SIMULATED: these results come from the simulated '
                   "accelerator (backend sim), not from a GPU.</div>")
    out.append(f"<h1>{_e(title)}</h1>")
    out.append(f"<p>runs: {_e(', '.join(run.run_id for run in data.runs))}; report written "
               f"{_e(_when(time.time()))}</p>")

    out.append("<h2>Verdict</h2>")
    if data.comparison is not None:
        comparison = data.comparison
        color = TIER_COLORS.get(comparison.tier, "#333")
        out.append(f'<p class="verdict" id="verdict" style="border-color:{color}">{_e(comparison.verdict)}</p>')
        out.append(f'<p>Tier: <b style="color:{color}" id="tier">{_e(comparison.tier.upper())}</b> '
                   f"(high-priority latency {_e(comparison.high_latency_tier)}, low-priority throughput "
                   f"{_e(comparison.low_throughput_tier)}). Baseline {_e(comparison.baseline_run_id)} "
                   f"(n={comparison.repeats_baseline}), XSched {_e(comparison.xsched_run_id)} "
                   f"(n={comparison.repeats_xsched}).</p>")
        rows_html = []
        for row in comparison_rows(comparison):
            if isinstance(row, str):
                rows_html.append(f'<tr class="section"><td colspan="4">{_e(row)}:</td></tr>')
            else:
                rows_html.append(f"<tr><td>{_e(row[0])}</td>" + "".join(f'<td class="num">{_e(c)}</td>'
                                                                       for c in row[1:]) + "</tr>")
        out.append("<table id=\"comparison\"><thead><tr><th>Metric</th><th>Baseline</th><th>XSched</th>"
                   f"<th>Change</th></tr></thead><tbody>{''.join(rows_html)}</tbody></table>")
        out.append("<p class=\"note\">Values are means over valid repeats; ± is the half-width of the 95 % "
                   "t-interval. Tier criteria: " + _e("; ".join(
                       f"{t.name}: P99 < {t.p99_below_ms:g} ms, improvement > {t.p99_improvement_above_pct:g} %, "
                       f"low-priority loss < {t.low_loss_below_pct:g} %" for t in comparison.criteria.tiers))
                   + ".</p>")
        if comparison.warnings:
            out.append("<ul>" + "".join(
                f'<li class="{"error" if w.startswith("LOAD NOT") else "warning"}">{_e(w)}</li>'
                for w in comparison.warnings) + "</ul>")
        out.append("<pre>" + _e("\n".join(bar_chart_lines(comparison.bars))) + "</pre>")
    else:
        out.append(f'<p class="refused verdict" id="verdict">{_e(verdict_text(data))}</p>')

    out.append("<h2>Plots</h2>")
    for name, (caption, png) in plots.items():
        encoded = base64.b64encode(png).decode("ascii")
        out.append(f'<figure><img class="plot" id="plot-{name}" alt="{_e(caption)}" '
                   f'src="data:image/png;base64,{encoded}"><figcaption>{_e(caption)}</figcaption></figure>')

    out.append("<h2>Spread across repeats</h2>")
    out.append(_table(SPREAD_HEADERS, spread_rows(data)))

    out.append("<h2>Validity and sample counts</h2>")
    trials = trial_rows(data)
    out.append(_table(TRIAL_HEADERS, [cells for _, cells in trials],
                      lambda index: "" if trials[index][0].valid else "invalid"))
    findings = []
    for trial, _ in trials:
        for finding in trial.findings:
            findings.append(f'<li class="{finding.severity}">{_e(trial.trial_id)}: {_e(finding.severity)} '
                            f"[{_e(finding.code)}] {_e(finding.message)}</li>")
    for run in data.runs:
        for finding in run.findings:
            findings.append(f'<li class="{finding.severity}">{_e(run.run_id)}: {_e(finding.message)}</li>')
    out.append("<ul>" + "".join(findings) + "</ul>" if findings else "<p>no findings</p>")

    out.append("<h2>Environment of each role</h2>")
    out.append(_table(ENV_HEADERS, environment_rows(data)))

    out.append("<h2>Runs, target and doctor</h2>")
    out.extend(_run_facts_html(run) for run in data.runs)
    out.append("</body></html>")
    return "\n".join(out)


# --------------------------------------------------------------------------- Markdown


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return value.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(data: ReportData, images: dict[str, tuple[str, str]]) -> str:
    """``images``: plot name -> (caption, file name relative to the Markdown file)."""
    title = data.comparison.title if data.comparison else "xsched-ops report"
    out = []
    if data.simulated:
        out.append("> **SIMULATED**: these results come from the simulated accelerator (backend sim), not a GPU.\n")
    out.append(f"# {title}\n")
    out.append(f"Runs: {', '.join(run.run_id for run in data.runs)}\n")
    out.append("## Verdict\n")
    out.append(f"**{verdict_text(data)}**\n")
    if data.comparison is not None:
        comparison = data.comparison
        out.append(f"Tier: **{comparison.tier.upper()}**\n")
        rows = []
        for row in comparison_rows(comparison):
            rows.append([f"**{row}**", "", "", ""] if isinstance(row, str) else list(row))
        out.append(_md_table(["Metric", "Baseline", "XSched", "Change"], rows) + "\n")
        out.extend(f"- {warning}" for warning in comparison.warnings)
        out.append("\n```\n" + "\n".join(bar_chart_lines(comparison.bars)) + "\n```\n")
    out.append("## Plots\n")
    for caption, file_name in images.values():
        out.append(f"![{caption}]({file_name})\n")
    out.append("## Spread across repeats\n")
    out.append(_md_table(SPREAD_HEADERS, spread_rows(data)) + "\n")
    out.append("## Validity and sample counts\n")
    trials = trial_rows(data)
    out.append(_md_table(TRIAL_HEADERS, [cells for _, cells in trials]) + "\n")
    for trial, _ in trials:
        out.extend(f"- {trial.trial_id}: {f.severity} [{f.code}] {f.message}" for f in trial.findings)
    out.append("\n## Environment of each role\n")
    out.append(_md_table(ENV_HEADERS, environment_rows(data)) + "\n")
    out.append("## Runs, target and doctor\n")
    for run in data.runs:
        meta = run.meta
        out.append(f"### Run {run.run_id}\n")
        if meta is None:
            out.append("no run record (run.json)\n")
            continue
        out.append(f"profile {meta.profile_name}, target {meta.target_name}, status {run.status}\n")
        out.append("```json\n" + json.dumps({"xsched": meta.xsched.model_dump(), "target": meta.target,
                                             "doctor": meta.doctor, "command_line": meta.command_line},
                                            indent=2) + "\n```\n")
    return "\n".join(out)


# --------------------------------------------------------------------------- entry point


# -- where the report goes -------------------------------------------------------------------------

_RUNS_LINE = re.compile(r"(?:<p>runs: |^Runs: )([^;<\n]*)", re.MULTILINE)


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def _runs_of_report(path: Path) -> list[str] | None:
    """The run ids an existing report names (its "runs:" line), None when it cannot be read as one."""
    try:
        with path.open("rb") as stream:
            head = stream.read(65536).decode("utf-8", "replace")
    except OSError:
        return None
    match = _RUNS_LINE.search(head)
    return [html.unescape(part).strip() for part in match.group(1).split(", ")] if match else None


def default_report_path(runs: list[RunResult], fmt: str = "html") -> Path:
    """``report.<fmt>`` in the first run's folder, unless a report of other runs is already there.

    A report is never overwritten by one of other runs: ``report A`` then ``report A B`` leaves A's
    report alone and writes ``report-<A>-<B>.<fmt>`` beside it.
    """
    folder = Path(runs[0].run_dir)
    plain = folder / f"report.{fmt}"
    ids = [run.run_id for run in runs]
    if not plain.exists() or _runs_of_report(plain) == ids:
        return plain
    stem = "report-" + "-".join(_file_safe(run_id) for run_id in ids)
    if len(stem) > 200:  # file names end at 255 bytes
        stem = stem[:180] + "-" + hashlib.sha1("\0".join(ids).encode()).hexdigest()[:12]
    return folder / f"{stem}.{fmt}"


def _output_file(out: Path | str, fmt: str) -> Path:
    """``out`` itself, or ``out/report.<fmt>`` when it is a folder (or written as one, ending in /)."""
    text = str(out)
    if not text.strip():
        raise UsageError("the report's output path is empty", "give a file or a folder, e.g. -o report.html")
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        return path / f"report.{fmt}"
    return path


def _write_output(path: Path, content: str | bytes) -> None:
    """Write one output file; an unwritable path is a one-line ResultsError (a partial new file is removed)."""
    existed = path.exists()
    try:
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
    except OSError as err:
        if not existed and path.is_file():
            path.unlink(missing_ok=True)
        raise ResultsError(f"cannot write the report to {path}: {err.strerror or err}",
                           "choose another --out file or folder") from None


def write_report(runs: list[RunResult], out: Path | str, fmt: str = "html") -> Path:
    """Write the report of ``runs`` to ``out`` (a file, or a folder: ``out/report.<fmt>``); Markdown puts
    ``<stem>-<plot>.png`` beside the file. An unwritable path is a ``ResultsError`` (exit 23), one line."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r} (formats: {', '.join(FORMATS)})")
    if not runs:
        raise UsageError("a report needs at least one run")
    out = _output_file(out, fmt)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ResultsError(f"cannot write the report to {out}: cannot make {out.parent} "
                           f"({err.strerror or err})", "choose another --out file or folder") from None
    data = gather(runs)
    plots = all_plots(data)
    if fmt == "html":
        _write_output(out, render_html(data, plots))
        return out
    images: dict[str, tuple[str, str]] = {}
    for name, (caption, png) in plots.items():
        file_name = f"{out.stem}-{name}.png"
        _write_output(out.parent / file_name, png)
        images[name] = (caption, file_name)
    _write_output(out, render_markdown(data, images))
    return out
