"""``xsched-ops sweep``: a grid of profile overrides, each cell one run; resumable."""

from __future__ import annotations

from pathlib import Path

import typer

from xsched_ops.cli import common

SWEEP_JSON_VERSION = 1


def sweep(
    profile_name: str = typer.Argument(..., metavar="PROFILE", help="Profile name or path."),
    grid: list[str] | None = typer.Option(None, "--grid", metavar="KEY=V1,V2,...",
                                          help="A profile key and its values (repeatable: the cells are every "
                                               "combination). Default: the profile's [sweep.grid]."),
    container: str | None = typer.Option(None, "--container", "-c", metavar="NAME", help="Docker container."),
    targets: list[str] | None = typer.Option(
        None, "--target", "-t", metavar="CONTAINER[@ENGINE]",
        help="A container to run cells in (repeatable: cells go to whichever is free). ENGINE is an engine "
             "address (unix:///PATH, tcp://HOST:PORT, ssh://USER@HOST) or a docker context; without it, "
             "--docker-host's engine. E.g. --target xo-1 --target xo-2@unix:///run/docker2.sock. A target "
             "lost during the sweep has its cell run again on another and is reported."),
    local: bool = typer.Option(False, "--local", help="Run on this host."),
    backend: str = typer.Option("sim", "--backend", metavar="sim|torch", help="sim (simulated device) or torch."),
    modes: list[str] | None = typer.Option(None, "--mode", metavar="MODE", help="Modes of every cell (repeatable)."),
    repeat: int | None = typer.Option(None, "--repeat", min=1, metavar="N",
                                      help="Repeats of every mode in every cell (default: the profile's [sweep], "
                                           "else 1)."),
    placement: str | None = typer.Option(None, "--placement", metavar="PLACEMENT", help="As for `run`."),
    duration: float | None = typer.Option(None, "--duration", metavar="SECONDS", help="Window of every trial."),
    set_values: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                help="Override for every cell (repeatable)."),
    seed: int | None = typer.Option(None, "--seed", metavar="N",
                                    help="Seed of the cells' random order (default: the profile's [sweep], else 1)."),
    max_duration: float | None = typer.Option(None, "--max-duration", metavar="SECONDS",
                                              help="Grow a cell's window up to this until its P99 meets MLPerf "
                                                   "LoadGen's early-stopping rule (and --interval-pct); again with "
                                                   "a larger cap, cells short of the rule grow on."),
    interval_pct: float | None = typer.Option(None, "--interval-pct", metavar="PCT",
                                              help="Target half width of the P99 interval across repeats, in % of "
                                                   "its mean."),
    sweep_dir: Path | None = typer.Option(None, "--sweep-dir", metavar="PATH",
                                          help="The sweep's folder (default: results/sweeps/PROFILE). Give the "
                                               "same command again to resume it."),
    gpus: str | None = typer.Option(None, "--gpus", metavar="0,1,...",
                                    help="Run cells concurrently, one per GPU (torch backend, native modes); "
                                         "with --target, on every target."),
    python: str = typer.Option("python3", "--python", metavar="PATH", help="The Python interpreter in the target."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and its expected duration; run nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary to stdout."),
) -> None:
    """Run a grid of cells (e.g. --grid low.batch=8,64,256,1024), each an ordinary run, in a seeded
    random order; the same command again skips the cells already valid and reruns the others.

    Without --grid the profile's [sweep] table gives the grid, modes, repeats and seed. Every valid
    cell's P99 is judged by MLPerf LoadGen's early-stopping rule (99 % confidence against the
    profile's SLA); with --max-duration a cell runs again, longer, until the rule is met.

    With several --target, cells run side by side, one per target (and GPU) at a time; every cell's
    record keeps its target (engine, container, image id) and GPU.

    Exit codes: 0 every cell valid; 21 a cell's run is invalid; 22 a cell did not complete (or no
    target was left to run it).
    """
    import json

    from xsched_ops.errors import InvalidRunError, RunFailedError, UsageError
    from xsched_ops.experiment import DEFAULT_MODES
    from xsched_ops.profiles import load_profile
    from xsched_ops.results import DEFAULT_RESULTS_DIR
    from xsched_ops.sweep.runner import grid_expressions, parse_grid, plan_sweep, run_sweep

    base = load_profile(profile_name)
    table = base.sweep
    axes = parse_grid(list(grid) if grid else grid_expressions(table.grid, base.name))
    chosen_modes = list(dict.fromkeys(modes or table.modes or DEFAULT_MODES))
    repeat = repeat if repeat is not None else table.repeat
    seed = seed if seed is not None else table.seed
    max_duration = max_duration if max_duration is not None else table.max_duration_s
    interval_pct = interval_pct if interval_pct is not None else table.p99_interval_pct
    if interval_pct is not None and not 0 < interval_pct <= 100:
        raise UsageError(f"--interval-pct {interval_pct:g}: allowed 0 < PCT <= 100")
    if max_duration is not None and not 0 < max_duration <= 86400:
        raise UsageError(f"--max-duration {max_duration:g}: allowed 0 < SECONDS <= 86400 (one day)")
    gpu_list = [gpu.strip() for gpu in gpus.split(",")] if gpus else None
    if gpu_list is not None:
        if any(not gpu.isdigit() for gpu in gpu_list) or len(set(gpu_list)) != len(gpu_list):
            raise UsageError(f"--gpus {gpus!r}: expected distinct GPU indices, e.g. 0,1")
        if backend != "torch" and len(gpu_list) > 1:
            raise UsageError("--gpus with several GPUs needs --backend torch", "the simulated device is one device")
        if "xsched" in chosen_modes and len(gpu_list) > 1:
            raise UsageError("--gpus with several GPUs runs native modes only",
                             "one xserver per IPC namespace: cells in mode xsched cannot run side by side")
    if targets and (container or local):
        raise UsageError("--target and --" + ("container" if container else "local") + " both given",
                         "give every target with --target CONTAINER[@ENGINE]")
    from xsched_ops.sweep.targets import TargetSpec, parse_targets

    specs = parse_targets(list(targets)) if targets else ([TargetSpec(container)] if container else [])
    folder = sweep_dir or (DEFAULT_RESULTS_DIR / "sweeps" / base.name)
    plan = plan_sweep(folder, base, axes, chosen_modes, repeat, seed, backend, placement, list(set_values or []),
                      duration, max_duration, interval_pct)
    console = common.stderr_console()
    slots = (len(gpu_list) if gpu_list else 1) * max(1, len(specs))
    console.print(f"sweep {folder}: {len(plan.manifest.order)} cell(s), {len(plan.skipped)} already valid, "
                  f"{len(plan.to_run)} to run ({len(chosen_modes)} mode(s) x {repeat} repeat(s) each); expected "
                  f"{plan.expected_seconds(backend, slots) / 60:.1f} min", markup=False)
    if dry_run:
        _print_plan(plan, backend, as_json)
        return
    if not specs and not local:
        raise UsageError("no target given", "name a container with --container NAME or --target "
                         "CONTAINER[@ENGINE] (repeatable), or use --local for this host")

    from xsched_ops.errors import XSchedOpsError
    from xsched_ops.experiment import ExperimentOptions, run_experiment
    from xsched_ops.sweep.runner import TargetLost, cells_not_run
    from xsched_ops.sweep.targets import close_targets, open_local, open_targets, record_targets

    runs_dir = folder / "runs"
    opened = open_local() if local else open_targets(specs, common.STATE.docker_host)
    events_before = len(plan.manifest.target_events)
    usable = record_targets(plan.manifest, opened)
    for item in opened:
        if item.target is None:
            console.print(f"target {item.label} is not used: {item.problem}", markup=False)
    spacing = _StartSpacing()

    def run_cell(cell_id, profile, slot):
        target = usable[slot.target]
        console.print(f"cell {cell_id} {slot.describe()}".rstrip(), markup=False)
        options = ExperimentOptions(profile=profile, backend=backend, modes=tuple(chosen_modes), repeat=repeat,
                                    placement=placement, results_dir=runs_dir, python=python,
                                    device=f"cuda:{slot.gpu}" if slot.gpu is not None else "auto",
                                    command_line=["sweep", profile_name, *(f"--grid={axis.key}={','.join(axis.values)}"
                                                                           for axis in axes)],
                                    show_progress=slots == 1)
        spacing.wait()
        try:
            outcome = run_experiment(target, options, console)
        except XSchedOpsError as err:
            gone = target.why_not_running()
            if gone:
                raise TargetLost(gone) from err
            raise
        except OSError as err:  # the transport to the engine broke (e.g. an ssh:// pipe), not an answer
            gone = target.why_not_running()
            raise TargetLost(gone or f"the connection to its engine broke ({type(err).__name__}: {err})",
                             broken_connection=not gone) from err
        if outcome.interrupted:  # Ctrl-C in this cell's run: the sweep stops (the cell reruns on resume)
            raise KeyboardInterrupt
        result = outcome.result
        if outcome.failure is not None:
            gone = target.why_not_running()
            if gone:
                raise TargetLost(gone, outcome.run_id)
            return outcome.run_id, "partial" if result.status == "partial" else "failed", outcome.failure.one_line()
        if not result.valid:
            errors = [finding.message for trial in result.trials for finding in trial.errors()]
            return outcome.run_id, "invalid", (errors[0] if errors else "invalid")
        return outcome.run_id, "valid", None

    def assess(run_id, profile):
        from xsched_ops.results.store import load_run
        from xsched_ops.sweep.sampling import assess_run

        return assess_run(load_run(run_id, runs_dir), profile.sla_ms, interval_pct)

    def on_extend(cell_id, seconds, sampling):
        console.print(f"cell {cell_id}: {'; '.join(sampling.unmet)}; again with a {seconds:g} s window", markup=False)

    def on_cell(record):
        unmet = (record.sampling or {}).get("unmet") or []
        console.print(f"cell {record.cell_id}: {record.status}" + (f" ({record.reason})" if record.reason else "")
                      + (f"; not met: {'; '.join(unmet)}" if unmet else ""), markup=False)

    def on_target_lost(label, cell_id, reason, still_used):
        if still_used:
            console.print(f"target {label}: {reason} during cell {cell_id}; the cell runs again", markup=False)
        else:
            console.print(f"target {label} lost during cell {cell_id}: {reason}; the cell goes to another target",
                          markup=False)

    try:
        manifest = run_sweep(plan, run_cell, gpu_list, on_cell=on_cell, assess=assess, on_extend=on_extend,
                             targets={item.label: item.info for item in opened if item.target is not None},
                             on_target_lost=on_target_lost,
                             on_stopping=lambda running: console.print(
                                 f"Ctrl-C: no new cell starts; the {running} running end and are recorded first",
                                 markup=False))
    finally:
        close_targets(opened)
    lost_lines = [_lost_line(event) for event in manifest.target_events[events_before:]]
    not_run = cells_not_run(manifest)
    rows = _summary_rows(folder, manifest)
    unmet = _unmet_lines(manifest)
    if as_json:
        print(json.dumps({"version": SWEEP_JSON_VERSION, "sweep_dir": str(folder), "simulated": backend == "sim",
                          "manifest": manifest.to_json(), "summary": rows, "unmet": unmet,
                          "targets_lost": lost_lines, "cells_not_run": not_run}, indent=2))
    else:
        if backend == "sim":
            print("SIMULATED device (sim backend): these are not GPU numbers")
        _print_summary(rows, several_targets=len(opened) > 1)
        if unmet:
            print("Not met (P99 rule: MLPerf LoadGen early stopping, 99 % confidence against the SLA):")
            for line in unmet:
                print(f"  {line}")
        if lost_lines:
            print("Targets lost or whose connection broke (their cells ran again):")
            for line in lost_lines:
                print(f"  {line}")
    if not_run:
        console.print(f"{len(not_run)} cell(s) not run: no target was left to run them (run the same command "
                      "again once a target answers)", markup=False)
        raise typer.Exit(RunFailedError.exit_code)
    statuses = {record.status for record in manifest.cells.values()}
    if statuses & {"partial", "failed"}:
        raise typer.Exit(RunFailedError.exit_code)
    if "invalid" in statuses:
        raise typer.Exit(InvalidRunError.exit_code)


class _StartSpacing:
    """Runs of one sweep start in distinct wall-clock seconds, early in the second: a run's id is the
    second it starts in (``results/store.py``), and side-by-side cells would otherwise get the same one."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._last = -1

    def wait(self) -> None:
        import time

        with self._lock:
            while int(time.time()) == self._last or time.time() % 1 > 0.8:
                time.sleep(1.02 - time.time() % 1)
            self._last = int(time.time())


def _lost_line(event: dict) -> str:
    where = event.get("target") or "the target"
    if event.get("cell") is None:
        return f"{where}: not used ({event.get('reason')})"
    if event.get("kind") == "connection broke":
        return f"{where}: its connection broke during cell {event['cell']} ({event.get('reason')}); still used"
    return f"{where}: lost during cell {event['cell']} ({event.get('reason')})"


def _print_plan(plan, backend: str, as_json: bool) -> None:
    import json

    from xsched_ops.sweep.runner import expected_seconds

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
    """One row per cell and mode, in grid order (``xsched_ops/sweep/table.py`` reads the cells' runs)."""
    from xsched_ops.sweep.table import load_sweep

    table = load_sweep(folder)
    points: dict[str, list] = {}
    for point in table.points:
        points.setdefault(point.cell_id, []).append(point)
    unreadable = {cell_id: text for cell_id, text in table.problems if text.startswith("unreadable: ")}
    rows = []
    for cell_id in sorted(manifest.cells, key=lambda cell: [manifest.grid[key].index(value) for key, value in
                                                            manifest.cells[cell].overrides.items()]):
        record = manifest.cells[cell_id]
        if cell_id not in points:
            rows.append({"cell": cell_id, "mode": None, "status": unreadable.get(cell_id, record.status),
                         "target": (record.target or {}).get("label"), "gpu": record.gpu})
            continue
        for point in points[cell_id]:
            summary = point.summary
            rows.append({"cell": cell_id, "status": record.status, "mode": point.mode, "run_id": record.run_id,
                         "target": (record.target or {}).get("label"), "gpu": record.gpu,
                         "duration_s": record.duration_s,
                         "p50_ms": summary.p50_ms.mean, "p99_ms": summary.p99_ms.mean,
                         "achieved_rate": summary.achieved_rate.mean, "target_rate": summary.target_rate,
                         "load_sustained": summary.load_sustained, "low_iter_per_s": summary.low_iter_per_s.mean,
                         "p99_rule": point.sampling})
    return rows


def _unmet_lines(manifest) -> list[str]:
    """What the sampling rule did not get, per cell (the summary's footnote)."""
    lines = []
    for cell_id in manifest.order:
        unmet = (manifest.cells[cell_id].sampling or {}).get("unmet") or []
        lines.extend(f"{cell_id}: {line}" for line in unmet)
    return lines


def _print_summary(rows: list[dict], several_targets: bool = False) -> None:
    from rich import box
    from rich.table import Table

    from xsched_ops.cli.render import print_table
    from xsched_ops.sweep.sampling import rule_verdict

    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for column in ("cell", "mode", "P50 ms", "P99 ms", "P99 rule", "rate", "sustained", "low iter/s", "status",
                   *(["target"] if several_targets else [])):
        table.add_column(column, overflow="fold")

    def number(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    for row in rows:
        where = [(row.get("target") or "-") + (f" GPU {row['gpu']}" if row.get("gpu") is not None else "")]
        table.add_row(row["cell"], row.get("mode") or "-", number(row.get("p50_ms")), number(row.get("p99_ms")),
                      rule_verdict(row.get("p99_rule")), number(row.get("achieved_rate")),
                      {True: "yes", False: "NO", None: "-"}[row.get("load_sustained")],
                      number(row.get("low_iter_per_s")), row["status"], *(where if several_targets else []))
    print_table(common.stdout_console(), table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("sweep")(sweep)
