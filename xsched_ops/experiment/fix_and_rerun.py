"""``fix-and-rerun``: doctor, fix, verify with a real load, run, compare -- one command.

1. the doctor's checks on the target; ``--fix``'s safe actions (a repaired environment stored in
   the target for xsched-ops runs, stale IPC removed, shadowing libraries moved aside only with
   ``--allow-lib-changes``); the checks again;
2. verification with a real load: the target's python3 started under the role environment the run
   will use; the shim must be mapped in it (a loader that only warns would run without XSched);
3. the experiment: mode xsched, and baseline too when the results store has no valid baseline of
   this target with the same resolved profile and backend;
4. the comparison (the caller prints it and applies ``--fail-under``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console

from xsched_ops.doctor import DoctorContext, Finding, run_checks
from xsched_ops.doctor.fixes import Action, apply, plan
from xsched_ops.doctor.ground_truth import RealLoad, libraries_for_route, real_load
from xsched_ops.doctor.summary import summarize
from xsched_ops.errors import InvalidRunError
from xsched_ops.experiment.environments import base_environment, xsched_role_environment
from xsched_ops.experiment.orchestrator import ExperimentOptions, RunOutcome, run_experiment
from xsched_ops.results import RunResult
from xsched_ops.results.store import list_runs, load_run
from xsched_ops.target.base import Target
from xsched_ops.xsched_install import discover


@dataclass
class DoctorPass:
    findings_before: list[Finding]
    actions: list[Action]
    findings_after: list[Finding]
    summary_after: dict
    environment_source: str


@dataclass
class FixOutcome:
    doctor: DoctorPass
    verification: RealLoad
    verification_env_method: str
    previous_baseline: RunResult | None
    run: RunOutcome
    notes: list[str] = field(default_factory=list)


def doctor_and_fix(target: Target, options: ExperimentOptions, allow_lib_changes: bool) -> DoctorPass:
    def new_context() -> DoctorContext:
        return DoctorContext(target=target, xsched_prefix=options.xsched_prefix, platform_name=options.platform,
                             route=options.route, probe_torch=options.backend == "torch")

    context = new_context()
    before = run_checks(context)
    actions = plan(context, before)
    apply(context, actions, allow_lib_changes)
    after_context = new_context()
    after = run_checks(after_context)
    return DoctorPass(before, actions, after, summarize(after), after_context.environment_source)


def verify_real_load(target: Target, options: ExperimentOptions) -> tuple[RealLoad, str]:
    """Start the target's python3 under the high role's XSched environment; refuse when the shim is not mapped."""
    base = base_environment(target)
    install = discover(target.fs(), base.env, options.xsched_prefix, options.platform)
    role_env = xsched_role_environment(base, install, target.fs(), options.profile, "high", options.route,
                                       repair=options.repair_env)
    route = options.route or install.platform.default_route
    load = real_load(target, role_env.env, import_torch=options.backend == "torch",
                     load_libraries=libraries_for_route(install.platform, route))
    if not load.has_mapped(install.platform.shim):
        detail = "; ".join(load.loader_messages[:2]) or (load.stderr.strip().splitlines() or ["no output"])[-1]
        raise InvalidRunError(
            f"verification failed: python3 under the computed XSched environment ({role_env.method}) does not map "
            f"{install.platform.shim} (exit code {load.exit_code}): {detail}",
            "the fix did not take; see `xsched-ops doctor` for the remaining failures "
            "(--allow-lib-changes lets the fix move shadowing libraries aside)",
        )
    return load, role_env.method


def find_valid_baseline(options: ExperimentOptions, target_name: str) -> RunResult | None:
    """The newest run of this target whose baseline trials are valid, with the same resolved profile and backend."""
    wanted_profile = options.profile.model_dump(mode="json")
    for listing in list_runs(options.results_dir):
        if listing.target_name != target_name or listing.profile_name != options.profile.name:
            continue
        if "baseline" not in listing.modes:
            continue
        result = load_run(listing.run_dir, options.results_dir)
        if result.meta is None or result.meta.profile != wanted_profile:
            continue
        trials = result.trials_of("baseline")
        if any(trial.meta is None or trial.meta.backend != options.backend for trial in trials):
            continue
        if result.mode_valid("baseline"):
            return result
    return None


def fix_and_rerun(target: Target, options: ExperimentOptions, console: Console, allow_lib_changes: bool,
                  on_doctor=None) -> FixOutcome:
    """Run the whole flow; ``on_doctor(pass)`` is called after the doctor so the caller can print it."""
    doctor = doctor_and_fix(target, options, allow_lib_changes)
    if on_doctor is not None:
        on_doctor(doctor)
    load, method = verify_real_load(target, options)
    target_name = target.name if target.kind != "local" else "local"
    previous = find_valid_baseline(options, target_name)
    modes = ("xsched",) if previous is not None else ("baseline", "xsched")
    options.modes = modes
    options.doctor_summary = {"summary": doctor.summary_after, "environment_source": doctor.environment_source,
                              "fix_actions": [action.as_dict() for action in doctor.actions],
                              "verification": load.as_dict()}
    outcome = run_experiment(target, options, console)
    notes = []
    if previous is not None:
        notes.append(f"baseline from the earlier valid run {previous.run_id} (same target, profile and backend)")
    return FixOutcome(doctor, load, method, previous, outcome, notes)
