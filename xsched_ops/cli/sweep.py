"""``xsched-ops sweep``: a grid of profile overrides, each cell one run; resumable."""

from __future__ import annotations

from pathlib import Path

import typer

from xsched_ops.cli import common

SWEEP_JSON_VERSION = 1


def sweep(
    profile_name: str = typer.Argument(..., metavar="PROFILE", help="Profile name or path."),
    grid: list[str] = typer.Option(..., "--grid", metavar="KEY=V1,V2,...",
                                   help="A profile key and its values (repeatable: the cells are every combination)."),
    container: str | None = typer.Option(None, "--container", "-c", metavar="NAME", help="Docker container."),
    local: bool = typer.Option(False, "--local", help="Run on this host."),
    backend: str = typer.Option("sim", "--backend", metavar="sim|torch", help="sim (simulated device) or torch."),
    modes: list[str] | None = typer.Option(None, "--mode", metavar="MODE", help="Modes of every cell (repeatable)."),
    repeat: int = typer.Option(1, "--repeat", min=1, metavar="N", help="Repeats of every mode in every cell."),
    placement: str | None = typer.Option(None, "--placement", metavar="PLACEMENT", help="As for `run`."),
    duration: float | None = typer.Option(None, "--duration", metavar="SECONDS", help="Window of every trial."),
    set_values: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                help="Override for every cell (repeatable)."),
    seed: int = typer.Option(1, "--seed", metavar="N", help="Seed of the cells' random order."),
    sweep_dir: Path | None = typer.Option(None, "--sweep-dir", metavar="PATH",
                                          help="The sweep's folder (default: results/sweeps/PROFILE). Give the "
                                               "same command again to resume it."),
    gpus: str | None = typer.Option(None, "--gpus", metavar="0,1,...",
                                    help="Run cells concurrently, one per GPU (torch backend, native modes)."),
    python: str = typer.Option("python3", "--python", metavar="PATH", help="The Python interpreter in the target."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and its expected duration; run nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary to stdout."),
) -> None:
    """Run a grid of cells (e.g. --grid low.batch=8,64,256,1024), each an ordinary run, in a seeded
    random order; the same command again skips the cells already valid and reruns the others.

    Exit codes: 0 every cell valid; 21 a cell's run is invalid; 22 a cell did not complete.
    """
    import json

    from xsched_ops.errors import InvalidRunError, RunFailedError, UsageError
    from xsched_ops.experiment import DEFAULT_MODES
    from xsched_ops.experiment.sweep import parse_grid, plan_sweep, run_sweep
    from xsched_ops.profiles import load_profile
    from xsched_ops.results import DEFAULT_RESULTS_DIR

    axes = parse_grid(list(grid))
    base = load_profile(profile_name)
    chosen_modes = list(dict.fromkeys(modes or DEFAULT_MODES))
    gpu_list = [gpu.strip() for gpu in gpus.split(",")] if gpus else None
    if gpu_list is not None:
        if any(not gpu.isdigit() for gpu in gpu_list) or len(set(gpu_list)) != len(gpu_list):
            raise UsageError(f"--gpus {gpus!r}: expected distinct GPU indices, e.g. 0,1")
        if backend != "torch" and len(gpu_list) > 1:
            raise UsageError("--gpus with several GPUs needs --backend torch", "the simulated device is one device")
        if "xsched" in chosen_modes and len(gpu_list) > 1:
            raise UsageError("--gpus with several GPUs runs native modes only",
                             "one xserver per IPC namespace: cells in mode xsched cannot run side by side")
    folder = sweep_dir or (DEFAULT_RESULTS_DIR / "sweeps" / base.name)
    plan = plan_sweep(folder, base, axes, chosen_modes, repeat, seed, backend, placement, list(set_values or []),
                      duration)
    console = common.stderr_console()
    slots = len(gpu_list) if gpu_list else 1
    console.print(f"sweep {folder}: {len(plan.manifest.order)} cell(s), {len(plan.skipped)} already valid, "
                  f"{len(plan.to_run)} to run ({len(chosen_modes)} mode(s) x {repeat} repeat(s) each); expected "
                  f"{plan.expected_seconds(backend, slots) / 60:.1f} min", markup=False)
    if dry_run:
        _print_plan(plan, backend, as_json)
        return

    from xsched_ops.experiment import ExperimentOptions, run_experiment
    from xsched_ops.target.open import open_target

    runs_dir = folder / "runs"

    def run_cell(cell_id, profile, gpu):
        console.print(f"cell {cell_id}" + (f" on GPU {gpu}" if gpu is not None else ""), markup=False)
        options = ExperimentOptions(profile=profile, backend=backend, modes=tuple(chosen_modes), repeat=repeat,
                                    placement=placement, results_dir=runs_dir, python=python,
                                    device=f"cuda:{gpu}" if gpu is not None else "auto",
                                    command_line=["sweep", profile_name, *(f"--grid={g}" for g in grid)],
                                    show_progress=gpu_list is None or len(gpu_list) == 1)
        outcome = run_experiment(target, options, console)
        result = outcome.result
        if outcome.failure is not None:
            return outcome.run_id, "partial" if result.status == "partial" else "failed", outcome.failure.one_line()
        if not result.valid:
            errors = [finding.message for trial in result.trials for finding in trial.errors()]
            return outcome.run_id, "invalid", (errors[0] if errors else "invalid")
        return outcome.run_id, "valid", None

    with open_target(container, local, common.STATE.docker_host) as target:
        manifest = run_sweep(plan, run_cell, gpu_list,
                             on_cell=lambda record: console.print(f"cell {record.cell_id}: {record.status}"
                                                                  + (f" ({record.reason})" if record.reason else ""),
                                                                  markup=False))
    rows = _summary_rows(folder, manifest)
    if as_json:
        print(json.dumps({"version": SWEEP_JSON_VERSION, "sweep_dir": str(folder), "manifest": manifest.to_json(),
                          "summary": rows}, indent=2))
    else:
        _print_summary(rows)
    statuses = {record.status for record in manifest.cells.values()}
    if statuses & {"partial", "failed"}:
        raise typer.Exit(RunFailedError.exit_code)
    if "invalid" in statuses:
        raise typer.Exit(InvalidRunError.exit_code)


def _print_plan(plan, backend: str, as_json: bool) -> None:
    import json

    from xsched_ops.experiment.sweep import expected_seconds

    rows = []
    for position, cell_id in enumerate(plan.manifest.order, 1):
        record = plan.manifest.cells[cell_id]
        seconds = expected_seconds(plan.profiles[cell_id], plan.manifest.modes, plan.manifest.repeat, backend)
        rows.append({"order": position, "cell": cell_id, "state": "skip (valid)" if record.status == "valid"
                     else ("rerun" if record.status != "pending" else "run"), "expected_s": round(seconds)})
    if as_json:
        print(json.dumps({"version": SWEEP_JSON_VERSION, "sweep_dir": str(plan.folder), "plan": rows}, indent=2))
        return
    for row in rows:
        print(f"{row['order']:>3}  {row['state']:<12} {row['expected_s']:>6} s  {row['cell']}")


def _summary_rows(folder: Path, manifest) -> list[dict]:
    from xsched_ops.errors import XSchedOpsError
    from xsched_ops.results.store import load_run

    rows = []
    for cell_id in sorted(manifest.cells, key=lambda cell: [manifest.grid[key].index(value) for key, value in
                                                            manifest.cells[cell].overrides.items()]):
        record = manifest.cells[cell_id]
        if record.run_id is None:
            rows.append({"cell": cell_id, "status": record.status, "mode": None})
            continue
        try:
            result = load_run(record.run_id, folder / "runs")
        except XSchedOpsError as err:
            rows.append({"cell": cell_id, "status": f"unreadable: {err.message}", "mode": None})
            continue
        for mode, summary in result.modes.items():
            rows.append({"cell": cell_id, "status": record.status, "mode": mode, "run_id": record.run_id,
                         "p50_ms": summary.p50_ms.mean, "p99_ms": summary.p99_ms.mean,
                         "achieved_rate": summary.achieved_rate.mean, "target_rate": summary.target_rate,
                         "load_sustained": summary.load_sustained, "low_iter_per_s": summary.low_iter_per_s.mean})
    return rows


def _print_summary(rows: list[dict]) -> None:
    from rich import box
    from rich.table import Table

    from xsched_ops.results.render import print_table

    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for column in ("cell", "mode", "P50 ms", "P99 ms", "rate", "sustained", "low iter/s", "status"):
        table.add_column(column, overflow="fold")

    def number(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    for row in rows:
        table.add_row(row["cell"], row.get("mode") or "-", number(row.get("p50_ms")), number(row.get("p99_ms")),
                      number(row.get("achieved_rate")), {True: "yes", False: "NO", None: "-"}[row.get("load_sustained")],
                      number(row.get("low_iter_per_s")), row["status"])
    print_table(common.stdout_console(), table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("sweep")(sweep)
