"""`xsched-ops report RUN...`: a self-contained HTML report (or Markdown with PNGs)."""

from __future__ import annotations

from pathlib import Path

import typer

from xsched_ops.cli import common
from xsched_ops.report import FORMATS, write_report
from xsched_ops.results.store import DEFAULT_RESULTS_DIR, load_run


def report_command(
    runs: list[str] = typer.Argument(..., metavar="RUN...", help="Run ids or folders (e.g. a baseline and an xsched run)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Output file (default: report.html / report.md in the first run's folder)."),
    fmt: str = typer.Option("html", "--format", help=f"One of: {', '.join(FORMATS)}."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS_DIR, "--results-dir", help="Where run ids are looked up."),
) -> None:
    """Write the report: verdict, comparison table, CDF, latency over time, throughput, validity, environment."""
    loaded = [load_run(run, results_dir) for run in runs]
    if out is None:
        out = Path(loaded[0].run_dir) / f"report.{fmt}"
    path = write_report(loaded, out, fmt)
    common.stderr_console().print(f"report written: {path}")
    print(path)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("report")(report_command)
