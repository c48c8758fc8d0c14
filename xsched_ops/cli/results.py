"""`xsched-ops results list|show|finalize`: the runs under the results folder."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from xsched_ops.cli import common
from xsched_ops.cli.common import DEFAULT_RESULTS_DIR

results_app = typer.Typer(help="List and show stored runs.", no_args_is_help=True)

RESULTS_DIR_OPTION = typer.Option(DEFAULT_RESULTS_DIR, "--results-dir", help="Folder holding the runs.")


@results_app.command("list")
def list_command(
    results_dir: Path = RESULTS_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Every run: id, profile, target, modes, status, validity, date (newest first).

    A damaged run (its run.json or result.json unreadable, not a run record) is listed as "damaged"
    with what is wrong.
    """
    from xsched_ops.results.models import SCHEMA_VERSION
    from xsched_ops.results.store import list_runs

    listings = list_runs(results_dir)
    if as_json:
        print(json.dumps({"version": SCHEMA_VERSION, "runs": [
            {"run_id": item.run_id, "run_dir": str(item.run_dir), "profile": item.profile_name,
             "target": item.target_name, "modes": list(item.modes), "status": item.status, "valid": item.valid,
             "simulated": item.simulated, "created_wall": item.created_wall, "finalized": item.finalized,
             "problem": item.problem}
            for item in listings]}, indent=2))
        return
    from xsched_ops.cli.render import message, render_run_list

    if not listings:
        message(common.stderr_console(), f"no runs under {results_dir}")
        return
    render_run_list(common.stdout_console(), listings)


@results_app.command("show")
def show_command(
    run: str = typer.Argument(..., help="Run id or folder."),
    results_dir: Path = RESULTS_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the full result (result.json's model) to stdout."),
) -> None:
    """One run: every trial's numbers and validity findings, per-mode statistics."""
    from xsched_ops.results.models import SCHEMA_VERSION
    from xsched_ops.results.store import load_run

    result = load_run(run, results_dir)
    if as_json:
        print(json.dumps({"version": SCHEMA_VERSION, "result": result.model_dump(mode="json")}, indent=2))
        return
    from xsched_ops.cli.render import render_run

    render_run(common.stdout_console(), result)


@results_app.command("finalize")
def finalize_command(
    run: str = typer.Argument(..., help="Run id or folder."),
    results_dir: Path = RESULTS_DIR_OPTION,
) -> None:
    """Analyse a run's trials again and rewrite its result.json (also on a partial run)."""
    from xsched_ops.cli.render import message
    from xsched_ops.results.store import finalize_run, resolve_run_dir

    result = finalize_run(resolve_run_dir(run, results_dir))
    message(common.stderr_console(), f"wrote {Path(result.run_dir) / 'result.json'} "
                                     f"({'valid' if result.valid else 'INVALID'}, status {result.status})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(results_app, name="results")
