"""`xsched-ops compare A [B]`: XSched against the baseline in the seed's layout, with the tier."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from xsched_ops.cli import common
from xsched_ops.cli.common import DEFAULT_RESULTS_DIR

if TYPE_CHECKING:
    from xsched_ops.results.compare import Comparison


def print_comparison(comparison: Comparison, as_json: bool) -> None:
    """JSON (``{"version": 1, "comparison": ...}``) to stdout, or the table, verdict and bar chart."""
    if as_json:
        import json

        from xsched_ops.results.compare import COMPARISON_VERSION

        print(json.dumps({"version": COMPARISON_VERSION, "comparison": comparison.model_dump(mode="json")},
                         indent=2))
        return
    from xsched_ops.cli.render import render_comparison

    render_comparison(common.stdout_console(), comparison)


def compare_command(
    baseline_run: str = typer.Argument(..., metavar="A",
                                       help="Run (id or folder) with the baseline; alone, it must also hold xsched."),
    xsched_run: str | None = typer.Argument(None, metavar="B", help="Run (id or folder) with the xsched trials."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS_DIR, "--results-dir", help="Where run ids are looked up."),
    baseline_mode: str = typer.Option("baseline", "--baseline-mode",
                                      help="Mode of A to use as the reference (e.g. priority-streams)."),
    xsched_mode: str = typer.Option("xsched", "--xsched-mode", help="Mode of B to compare against it."),
) -> None:
    """Compare XSched with the baseline: P50/P99/P99.9/max, rate, SLA, low-priority throughput, tier.

    Refuses runs that failed their validity checks (exit code of InvalidRunError).
    """
    from xsched_ops.results.compare import compare
    from xsched_ops.results.store import load_run

    baseline = load_run(baseline_run, results_dir)
    under = load_run(xsched_run, results_dir) if xsched_run else baseline
    comparison = compare(baseline, under, baseline_mode=baseline_mode, xsched_mode=xsched_mode)
    print_comparison(comparison, as_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("compare")(compare_command)
