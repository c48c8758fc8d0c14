"""`xsched-ops fix-and-rerun PROFILE --container NAME`: doctor, fix, verify, run, compare, verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from xsched_ops.cli import common
from xsched_ops.cli.common import DEFAULT_RESULTS_DIR

if TYPE_CHECKING:  # the experiment, the results and the Docker SDK load when the command runs
    from xsched_ops.experiment.fix_and_rerun import DoctorPass
    from xsched_ops.results.compare import Comparison

# Exit code when the comparison's tier is worse than --fail-under.
TIER_BELOW_THRESHOLD_EXIT = 1


def fix_and_rerun_command(
    profile_name: str = typer.Argument(..., metavar="PROFILE", help="Profile name (profiles/*.toml) or file."),
    container: str | None = typer.Option(None, "--container", "-c", help="Container name or id."),
    local: bool = typer.Option(False, "--local", help="This host instead of a container."),
    backend: str = typer.Option("sim", "--backend", help="torch (real GPU, or CPU) or sim (simulated device)."),
    duration: float | None = typer.Option(None, "--duration", help="Measurement window in seconds."),
    set_values: list[str] | None = typer.Option(None, "--set", help="Profile override KEY=VALUE (repeatable)."),
    repeat: int = typer.Option(1, "--repeat", min=1, help="Repeat every mode N times, modes interleaved."),
    fail_under: str | None = typer.Option(None, "--fail-under", metavar="TIER",
                                          help="Exit 1 when the tier is worse than this "
                                               "(excellent, good, acceptable)."),
    allow_lib_changes: bool = typer.Option(False, "--allow-lib-changes",
                                           help="Let the fix move shadowing stale libraries aside."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS_DIR, "--results-dir", help="Where results/<run-id>/ goes."),
    xsched_prefix: str | None = typer.Option(None, "--xsched-prefix", help="XSched install prefix in the target."),
    platform: str | None = typer.Option(None, "--platform", help="Force the platform (hip, cuda)."),
    route: str | None = typer.Option(None, "--route", help="preload or libpath."),
    python: str = typer.Option("python3", "--python", help="The Python interpreter in the target."),
    device: str = typer.Option("auto", "--device", help="torch device: auto, cuda, cuda:N, cpu."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary to stdout."),
) -> None:
    """Repair XSched in the target and measure again: doctor, --fix, a real-load check, the run, the verdict.

    Runs xsched, and baseline too when the results hold no valid baseline of this target with the
    same resolved profile. Exit codes: 0 compared (and not below --fail-under); 1 tier below
    --fail-under; 21 invalid; 22 a trial did not complete.
    """
    from xsched_ops.cli.doctor import findings_table
    from xsched_ops.cli.render import message
    from xsched_ops.cli.run import finish
    from xsched_ops.experiment import ExperimentOptions
    from xsched_ops.experiment.fix_and_rerun import fix_and_rerun
    from xsched_ops.profiles import load_profile
    from xsched_ops.results.compare import TIER_ORDER
    from xsched_ops.target.open import open_target

    if fail_under is not None and fail_under not in TIER_ORDER[:-1]:
        from xsched_ops.errors import UsageError

        raise UsageError(f"--fail-under {fail_under!r}: not a tier", f"tiers: {', '.join(TIER_ORDER[:-1])}")
    common.check_route(route)
    profile = load_profile(profile_name, list(set_values or []), duration_s=duration)
    console = common.stderr_console()
    options = ExperimentOptions(
        profile=profile, backend=backend, repeat=repeat, results_dir=results_dir, xsched_prefix=xsched_prefix,
        platform=platform, route=route, repair_env=True, python=python, device=device,
        command_line=["xsched-ops", "fix-and-rerun", profile_name]
        + (["--container", container] if container else ["--local"] if local else []),
        show_progress=not as_json,
    )

    def show_doctor(doctor: DoctorPass) -> None:
        if as_json:
            return
        console.print(findings_table(doctor.findings_before, "doctor: before the fix"))
        for action in doctor.actions:
            state = action.result if action.applied else f"skipped: {action.skipped_reason}"
            message(console, f"  {'✓' if action.applied else '·'} {action.kind}: {action.description} -- {state}")
        if not doctor.actions:
            message(console, "  nothing to fix automatically")
        message(console, f"doctor after the fix: {doctor.summary_after['line']} ({doctor.environment_source})")

    with open_target(container, local, common.STATE.docker_host) as target:
        outcome = fix_and_rerun(target, options, console, allow_lib_changes, on_doctor=show_doctor)
    if not as_json:
        message(console, f"verified with a real load ({outcome.verification.env_method} environment): "
                         "the shim is mapped in python3")
        message(console, f"scheduler: {outcome.verification.scheduler}")
        for note in outcome.notes:
            message(console, note)
    extra = {
        "doctor": {"before": [f.model_dump() for f in outcome.doctor.findings_before if f.failed],
                   "actions": [action.as_dict() for action in outcome.doctor.actions],
                   "after": outcome.doctor.summary_after},
        "verification": outcome.verification.as_dict(),
        "baseline_run": outcome.previous_baseline.run_id if outcome.previous_baseline else outcome.run.run_id,
    }

    def verdict(comparison: Comparison | None, document: dict | None) -> None:
        below = comparison is not None and fail_under is not None and \
            TIER_ORDER.index(comparison.tier) > TIER_ORDER.index(fail_under)
        if document is not None:
            document["fail_under"] = fail_under
            document["below_fail_under"] = below
            print(json.dumps(document, indent=2))
        elif comparison is not None:
            message(console, f"verdict: tier {comparison.tier.upper()}"
                    + (f" (required at least {fail_under})" if fail_under else ""))
        if comparison is None:
            from xsched_ops.errors import ResultsError

            raise ResultsError("no comparison could be made", f"see the results in {outcome.run.run_dir}")
        if below:
            message(console, f"tier {comparison.tier} is worse than --fail-under {fail_under}", style="bold red")
            raise typer.Exit(TIER_BELOW_THRESHOLD_EXIT)

    finish(outcome.run, as_json, no_report, extra=extra, baseline_run=outcome.previous_baseline, after=verdict)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("fix-and-rerun")(fix_and_rerun_command)
