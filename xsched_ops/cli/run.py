"""`xsched-ops run PROFILE`: the dual-model experiment in a target, measured, compared, reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from xsched_ops.cli import common
from xsched_ops.cli.common import DEFAULT_RESULTS_DIR
from xsched_ops.errors import InvalidRunError, ResultsError, XSchedOpsError

if TYPE_CHECKING:  # the experiment, the results (pydantic, numpy) and the Docker SDK load when a command runs
    from xsched_ops.experiment import RunOutcome
    from xsched_ops.results import RunResult
    from xsched_ops.results.compare import Comparison

JSON_VERSION = 1


def comparison_of(result: RunResult, baseline_run: RunResult | None = None
                  ) -> tuple[Comparison | None, XSchedOpsError | None]:
    """XSched against the run's baseline (or priority-streams), or against ``baseline_run``'s; else nothing."""
    from xsched_ops.results.compare import compare

    if "xsched" not in result.modes:
        return None, None
    if baseline_run is not None and "baseline" not in result.modes:
        try:
            return compare(baseline_run, result), None
        except (InvalidRunError, ResultsError) as err:
            return None, err
    reference = next((mode for mode in ("baseline", "priority-streams") if mode in result.modes), None)
    if reference is None:
        return None, None
    try:
        return compare(result, baseline_mode=reference), None
    except (InvalidRunError, ResultsError) as err:
        return None, err


def write_run_report(result: RunResult) -> tuple[Path | None, str | None]:
    """The HTML report beside the results, when the report package is there; (path, problem)."""
    try:
        from xsched_ops.report import write_report
    except ImportError as err:
        return None, f"no report: the report package is not available ({err})"
    try:
        return write_report([result], Path(result.run_dir) / "report.html"), None
    except Exception as err:  # the report is a convenience: the results are already written
        return None, f"no report: {type(err).__name__}: {err}"


def invalid_run_error(result: RunResult) -> InvalidRunError:
    problems = [f"{trial.trial_id}: {finding.message}" for trial in result.trials for finding in trial.errors()]
    problems += [finding.message for finding in result.findings if finding.severity == "error"]
    target = result.meta.target_name if result.meta else None
    where = " --local" if target == "local" else (f" --container {target}" if target else "")
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    return InvalidRunError(f"run {result.run_id} is invalid: {shown}",
                           f"run `xsched-ops doctor{where}` (or `xsched-ops fix-and-rerun`); "
                           f"details: `xsched-ops results show {result.run_id}`")


def finish(outcome: RunOutcome, as_json: bool, no_report: bool, extra: dict | None = None,
           baseline_run: RunResult | None = None, after=None) -> Comparison | None:
    """Print what a run gave (run table, comparison, report path); raise the error that decides the exit code."""
    from xsched_ops.cli.render import message, render_run
    from xsched_ops.results.compare import COMPARISON_VERSION

    console = common.stderr_console()
    result = outcome.result
    comparison, compare_error = (None, None) if outcome.failure else comparison_of(result, baseline_run)
    report_path, report_problem = (None, None) if no_report else write_run_report(result)
    error = outcome.failure or compare_error
    if error is None and not result.valid:
        error = invalid_run_error(result)
    document: dict = {}
    if as_json:
        document = {
            "version": JSON_VERSION,
            "run_id": outcome.run_id,
            "run_dir": str(outcome.run_dir),
            "status": result.status,
            "valid": result.valid,
            "simulated": result.simulated,
            "environment_source": outcome.environment_source,
            "trials": [{"trial": t.trial_id, "mode": t.mode, "valid": t.valid,
                        "status": t.meta.status if t.meta else None,
                        "p99_ms": t.high.latency_ms.p99 if t.high else None,
                        "achieved_rate": t.high.achieved_rate if t.high else None,
                        "low_iter_per_s": t.low.iter_per_s if t.low else None,
                        "shim_mapped": {role: ev.shim_mapped for role, ev in t.roles.items()},
                        "scheduler": ({"xserver_end": t.meta.scheduler.xserver_end,
                                       "roles": {role: {"pid": ev.pid, "connected": ev.scheduler_connected,
                                                        "priorities": ev.scheduler_priorities}
                                                 for role, ev in t.roles.items()}}
                                      if t.meta and t.meta.scheduler and t.meta.scheduler.available else None),
                        "errors": [f.message for f in t.errors()]} for t in result.trials],
            "comparison": ({"version": COMPARISON_VERSION, **comparison.model_dump(mode="json")}
                           if comparison else None),
            "report": str(report_path) if report_path else None,
            "error": ({"type": type(error).__name__, "message": error.one_line(), "exit_code": error.exit_code}
                      if error else None),
            **(extra or {}),
        }
        if after is None or error is not None:
            print(json.dumps(document, indent=2))
    else:
        render_run(console, result)
        if comparison is not None:
            from xsched_ops.cli.compare import print_comparison

            print_comparison(comparison, as_json=False)
        if report_path:
            message(console, f"report: {report_path}")
        elif report_problem:
            message(console, report_problem, style="yellow")
        message(console, f"results: {outcome.run_dir}")
    if error is not None:
        raise error
    if after is not None:
        after(comparison, document if as_json else None)
    return comparison


def command_line(profile_name: str, container: str | None, local: bool, backend: str, modes: list[str] | None,
                 placement: str | None, repeat: int, duration: float | None, set_values: list[str] | None,
                 results_dir: Path) -> list[str]:
    """The command as run, rebuilt from its parsed options (recorded in run.json)."""
    words = ["xsched-ops", "run", profile_name]
    words += ["--container", container] if container else (["--local"] if local else [])
    words += ["--backend", backend]
    for mode in modes or []:
        words += ["--mode", mode]
    if placement:
        words += ["--placement", placement]
    if repeat != 1:
        words += ["--repeat", str(repeat)]
    if duration is not None:
        words += ["--duration", f"{duration:g}"]
    for value in set_values or []:
        words += ["--set", value]
    return words + ["--results-dir", str(results_dir)]


def run(
    profile_name: str = typer.Argument(..., metavar="PROFILE", help="Profile name (profiles/*.toml) or file."),
    container: str | None = typer.Option(None, "--container", "-c", help="Container name or id."),
    local: bool = typer.Option(False, "--local", help="Run on this host (a GPU host without Docker)."),
    backend: str = typer.Option("sim", "--backend", help="torch (real GPU, or CPU) or sim (simulated device)."),
    modes: list[str] | None = typer.Option(None, "--mode", help="standalone, baseline, xsched, priority-streams; "
                                           "repeat the option for several (default: baseline then xsched)."),
    placement: str | None = typer.Option(None, "--placement",
                                         help="processes, streams or shared-stream (mode baseline); mps: processes under an NVIDIA "
                                              "MPS daemon of each trial (CUDA; modes standalone, baseline, xsched)."),
    repeat: int = typer.Option(1, "--repeat", min=1, help="Repeat every mode N times, modes interleaved."),
    duration: float | None = typer.Option(None, "--duration", help="Measurement window in seconds."),
    set_values: list[str] | None = typer.Option(None, "--set", help="Profile override KEY=VALUE (repeatable)."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS_DIR, "--results-dir", help="Where results/<run-id>/ goes."),
    xsched_prefix: str | None = typer.Option(None, "--xsched-prefix", help="XSched install prefix in the target."),
    platform: str | None = typer.Option(None, "--platform", help="Force the platform (hip, cuda)."),
    route: str | None = typer.Option(None, "--route", help="preload or libpath."),
    repair_env: bool = typer.Option(False, "--repair-env",
                                    help="Without an environment stored by `doctor --fix`: compute the repaired "
                                         "XSched environment for this run (it is not stored)."),
    python: str = typer.Option("python3", "--python", help="The Python interpreter in the target."),
    device: str = typer.Option("auto", "--device", help="torch device: auto, cuda, cuda:N, cpu."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary to stdout."),
) -> None:
    """Run the dual-model experiment: baseline then xsched by default, compared at the end.

    Exit codes: 0 valid (and compared); 21 invalid (refused by compare); 22 a trial did not
    complete (what was measured is kept, marked partial).
    """
    from xsched_ops.experiment import DEFAULT_MODES, ExperimentOptions, run_experiment
    from xsched_ops.profiles import load_profile
    from xsched_ops.target.open import open_target

    common.check_route(route)
    profile = load_profile(profile_name, list(set_values or []), duration_s=duration)
    options = ExperimentOptions(
        profile=profile, backend=backend, modes=tuple(modes or DEFAULT_MODES), repeat=repeat, placement=placement,
        results_dir=results_dir, xsched_prefix=xsched_prefix, platform=platform, route=route,
        repair_env=repair_env, python=python, device=device, command_line=command_line(profile_name, container, local, backend, modes, placement, repeat, duration,
                                  set_values, results_dir),
        show_progress=not as_json,
    )
    with open_target(container, local, common.STATE.docker_host) as target:
        outcome = run_experiment(target, options, common.stderr_console())
    finish(outcome, as_json, no_report)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("run")(run)
