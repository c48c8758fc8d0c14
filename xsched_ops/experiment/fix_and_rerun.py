"""``fix-and-rerun``: doctor, fix, verify with a real load, run, compare -- one command.

1. the doctor's checks on the target; ``--fix``'s safe actions (a repaired environment stored in
   the target for xsched-ops runs, stale IPC removed, shadowing libraries moved aside only with
   ``--allow-lib-changes``); the checks again;
2. verification with a real load: the target's python3 started under the role environment the run
   will use, with the profile's xserver running (a GLB client dies without one); the shim must be
   mapped in it (a loader that only warns would run without XSched) and the xserver must see it
   connect with its XQueue at the role's priority;
3. the experiment: mode xsched, and baseline too when the results store has no valid baseline of
   this target with the same resolved profile and backend;
4. the comparison (the caller prints it and applies ``--fail-under``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from rich.console import Console

from xsched_ops.doctor import DoctorContext, Finding, run_checks
from xsched_ops.doctor.fixes import Action, apply, plan
from xsched_ops.doctor.ground_truth import RealLoad, libraries_for_route, real_load, without_global_scheduler
from xsched_ops.doctor.summary import summarize
from xsched_ops.environment.base import base_environment
from xsched_ops.environment.roles import xsched_role_environment
from xsched_ops.errors import InvalidRunError
from xsched_ops.experiment.options import ExperimentOptions, RunOutcome
from xsched_ops.experiment.orchestrator import run_experiment
from xsched_ops.experiment.xserver import XServer
from xsched_ops.results import RunResult
from xsched_ops.results.models import SchedulerView
from xsched_ops.results.store import list_runs, load_run
from xsched_ops.target.base import Target
from xsched_ops.xsched.install import discover
from xsched_ops.xsched.ipc_state import clean_ipc
from xsched_ops.xsched.settings import effective_scheduler


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
    verification: Verification
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


@dataclass
class Verification:
    """The verifying load and what the scheduler saw of it."""

    load: RealLoad
    env_method: str
    scheduler: str  # one line: what the xserver saw, or why its view is not available

    def as_dict(self) -> dict:
        return {**self.load.as_dict(), "env_method": self.env_method, "scheduler": self.scheduler}


def verify_real_load(target: Target, options: ExperimentOptions) -> Verification:
    """Start the target's python3 under the high role's exact XSched environment, with the profile's
    xserver running when the role is a global-scheduler client (a real client dies without one):
    the shim must be mapped and, with an xserver, the xserver must see the process connect and
    create its XQueue at the role's priority. Otherwise the run is refused."""
    base = base_environment(target)
    install = discover(target.fs(), base.env, options.xsched_prefix, options.platform)
    role_env = xsched_role_environment(base, install, target.fs(), options.profile, "high", options.route,
                                       repair=options.repair_env)
    route = options.route or install.platform.default_route
    env = dict(role_env.env)
    hint = ("the fix did not take; see `xsched-ops doctor` for the remaining failures "
            "(--allow-lib-changes lets the fix move shadowing libraries aside)")
    xserver: XServer | None = None
    scheduler_line = ""
    if effective_scheduler(env).kind == "global":
        if target.fs().isfile(install.xserver_path):
            xsched = options.profile.xsched
            xserver = XServer(target, install.xserver_path, xsched.xserver_policy, xsched.xserver_port,
                              base.env, f"verify-{uuid.uuid4().hex[:8]}", options.python)
        else:
            env, note = without_global_scheduler(env)
            scheduler_line = f"no xserver at {install.xserver_path}: {note}"
    else:
        scheduler_line = f"the scheduler's view is not available: {effective_scheduler(env).reason}"
    try:
        if xserver is not None:
            clean_ipc(target, options.python)
            xserver.start()
        load = real_load(target, env, import_torch=options.backend == "torch",
                         load_libraries=libraries_for_route(install.platform, route),
                         call_init=install.platform.init_symbol)
    finally:
        if xserver is not None:
            xserver.stop()
            clean_ipc(target, options.python)
    if not load.has_mapped(install.platform.shim):
        detail = "; ".join(load.loader_messages[:2]) or (load.stderr.strip().splitlines() or ["no output"])[-1]
        raise InvalidRunError(
            f"verification failed: python3 under the computed XSched environment ({role_env.method}) does not map "
            f"{install.platform.shim} (exit code {load.exit_code}): {detail}", hint)
    if xserver is not None:
        scheduler_line = _scheduler_saw(xserver.view(), load, env)
        if not scheduler_line.startswith("the xserver saw"):
            raise InvalidRunError(f"verification failed: {scheduler_line}", hint)
    return Verification(load, role_env.method, scheduler_line)


def _scheduler_saw(view: SchedulerView, load: RealLoad, env: dict[str, str]) -> str:
    """One line on what the xserver saw of the verifying process; "the xserver saw ..." when all is well."""
    seen = view.process(load.pid)
    if seen is None:
        last = (load.stderr.strip().splitlines() or ["no output"])[-1]
        return (f"the xserver never saw the verifying python3 (pid {load.pid}, exit code {load.exit_code}) "
                f"connect: {last}")
    if not seen.xqueues:
        return (f"the verifying python3 (pid {load.pid}) connected to the xserver but created no XQueue "
                f"(XSCHED_AUTO_XQUEUE={env.get('XSCHED_AUTO_XQUEUE', 'unset')}, "
                f"level {env.get('XSCHED_AUTO_XQUEUE_LEVEL', '1')})")
    priorities = sorted({queue.priority for queue in seen.xqueues if queue.priority is not None})
    wanted = env.get("XSCHED_AUTO_XQUEUE_PRIORITY")
    if wanted is not None and priorities != [int(wanted)]:
        return (f"the xserver gave the verifying process's XQueues priority {priorities}, not the configured "
                f"{wanted}")
    return (f"the xserver saw the verifying python3 (pid {load.pid}) connect and create {len(seen.xqueues)} "
            f"XQueue(s) at priority {', '.join(map(str, priorities))}; it ended on {view.xserver_end}")


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
    """Run the whole flow; ``on_doctor(pass)`` is called after the doctor so the caller can print it.

    The run's options are a copy of ``options`` with the modes and the doctor's record filled in:
    the caller's stay as they were."""
    doctor = doctor_and_fix(target, options, allow_lib_changes)
    if on_doctor is not None:
        on_doctor(doctor)
    verification = verify_real_load(target, options)
    target_name = target.name if target.kind != "local" else "local"
    previous = find_valid_baseline(options, target_name)
    modes = ("xsched",) if previous is not None else ("baseline", "xsched")
    doctor_summary = {"summary": doctor.summary_after, "environment_source": doctor.environment_source,
                      "fix_actions": [action.as_dict() for action in doctor.actions],
                      "verification": verification.as_dict()}
    outcome = run_experiment(target, replace(options, modes=modes, doctor_summary=doctor_summary), console)
    notes = []
    if previous is not None:
        notes.append(f"baseline from the earlier valid run {previous.run_id} (same target, profile and backend)")
    return FixOutcome(doctor, verification, previous, outcome, notes)
