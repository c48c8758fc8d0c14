"""`xsched-ops report RUN...`: a self-contained HTML report (or Markdown with PNGs)."""

from __future__ import annotations

from pathlib import Path

import typer

from xsched_ops.cli import common
from xsched_ops.cli.common import DEFAULT_RESULTS_DIR

# ``xsched_ops.report.FORMATS`` (tests/test_startup.py checks they agree): repeated here because
# the report package imports matplotlib, which only the command itself needs.
FORMATS = ("html", "md")


def report_command(
    runs: list[str] = typer.Argument(..., metavar="RUN...", help="Run ids or folders (e.g. a baseline and an xsched run), or one sweep folder."),
    out: str | None = typer.Option(None, "--out", "-o",
                                   help="Output file, or a folder for FOLDER/report.html (default: report.html in the "
                                        "first run's folder, or report-A-B.html there when a report of other runs "
                                        "already is)."),
    fmt: str = typer.Option("html", "--format", help=f"One of: {', '.join(FORMATS)}."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS_DIR, "--results-dir", help="Where run ids are looked up."),
) -> None:
    """Write the report: verdict, comparison table, CDF, latency over time, throughput, validity, environment.

    Given a sweep folder: its curves (P50/P99 against the swept setting, achieved against offered
    rate, low-priority throughput) and, for XSched settings, the Pareto front and a recommendation."""
    from xsched_ops.errors import UsageError

    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r} (formats: {', '.join(FORMATS)})")
    if out is not None and not out.strip():
        raise UsageError("--out is empty", "give a file or a folder, e.g. -o report.html")
    from xsched_ops.report.sweep import build_sweep_report, is_sweep_dir

    if any(is_sweep_dir(run) for run in runs):
        if len(runs) > 1:
            raise UsageError("a sweep folder is reported alone", "give `xsched-ops report SWEEP_DIR` by itself")
        path = build_sweep_report(runs[0], out, fmt)
    else:
        from xsched_ops.report import write_report
        from xsched_ops.report.build import default_report_path
        from xsched_ops.results.store import load_run

        loaded = [load_run(run, results_dir) for run in runs]
        path = write_report(loaded, default_report_path(loaded, fmt) if out is None else out, fmt)
    from xsched_ops.cli.render import message

    message(common.stderr_console(), f"report written: {path}")
    print(path)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("report")(report_command)
