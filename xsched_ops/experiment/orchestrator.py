"""One ``xsched-ops run``: set up, run every trial, always clean up, finalize the results.

Per trial: environments for the mode, the spec, (mode xsched) stale IPC removed and the xserver
started and polled until it answers, the workload launcher run as one streamed exec with a
timeout, then -- whatever happened -- the xserver stopped, anything of the run still alive in the
target ended, IPC state removed, the files pulled out and the trial record written (complete,
partial or failed). A trial that did not complete stops the run; what was measured is finalized.

The sequence lives here; each job it calls on has its own module: ``run_record`` (the doctor's
record and the run's meta), ``staging`` (the workload and model files in the target),
``trial_environments``, ``xserver_watch``, ``diagnosis`` (why a trial failed, and whether the run
is invalid), ``interrupt_hold`` (Ctrl-C held while a trial is cleaned up and recorded).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from rich.console import Console

from xsched_ops.environment.base import BaseEnvironment, base_environment
from xsched_ops.errors import RunFailedError, UsageError, XSchedOpsError
from xsched_ops.experiment.collect import pull_trial_files, recorded_counts
from xsched_ops.experiment.diagnosis import failure_reason, trial_error
from xsched_ops.experiment.interrupt_hold import InterruptHold
from xsched_ops.experiment.modes import ModePlan, mode_plan, trial_order
from xsched_ops.experiment.mps import MpsDaemon
from xsched_ops.experiment.mps import preflight as mps_preflight
from xsched_ops.experiment.options import ExperimentOptions, RunOutcome
from xsched_ops.experiment.processes import end_marked
from xsched_ops.experiment.progress import RunProgress
from xsched_ops.experiment.run_record import write_run_records
from xsched_ops.experiment.staging import remove_staged_models, stage_workload
from xsched_ops.experiment.trial_environments import role_runtime, trial_environments, write_environments
from xsched_ops.experiment.xserver import XServer, refuse_if_xserver_runs
from xsched_ops.experiment.xserver_watch import XServerWatch
from xsched_ops.results import (
    TrialMeta,
    finalize_run,
    new_run_id,
    run_dir_for,
    trial_dir_for,
    write_trial_meta,
)
from xsched_ops.target.base import Target
from xsched_ops.workload import TARGET_ROOT, WORKLOAD_PACKAGE, target_folder, workload_version
from xsched_ops.workload.spec import build_spec
from xsched_ops.xsched.install import XSchedInstall, discover
from xsched_ops.xsched.ipc_state import clean_ipc

__all__ = ["ExperimentOptions", "RunOutcome", "Experiment", "run_experiment"]

# Time a trial may take beyond warm-up + window + drain before it is ended as timed out.
STARTUP_MARGIN_S = {"sim": 60.0, "torch": 300.0}


class Experiment:
    def __init__(self, target: Target, options: ExperimentOptions, console: Console) -> None:
        if options.backend not in ("sim", "torch"):
            raise UsageError(f"unknown backend {options.backend!r}", "backends: sim, torch")
        self.target = target
        self.options = options
        self.profile = options.profile
        self.console = console
        self.plans: dict[str, ModePlan] = {mode: mode_plan(mode, self.profile, options.placement)
                                           for mode in dict.fromkeys(options.modes)}
        self.order = trial_order(list(options.modes), options.repeat)
        self.mark = uuid.uuid4().hex[:12]
        self.run_id = self._unique_run_id(options.results_dir)
        self.run_dir = run_dir_for(self.run_id, options.results_dir)
        self.base: BaseEnvironment | None = None
        self.install: XSchedInstall | None = None
        self.model_paths: dict[str, str] = {}
        self.doctor_record: dict | None = None
        self._hold = InterruptHold()
        self.interrupted = False  # a Ctrl-C stopped a trial (RunOutcome.interrupted)

    def _unique_run_id(self, results_dir: Path) -> str:
        run_id = new_run_id(self.profile.name)
        candidate, counter = run_id, 2
        while run_dir_for(candidate, results_dir).exists():
            candidate = f"{run_id}-{counter}"
            counter += 1
        return candidate

    # -- set-up -------------------------------------------------------------------------------
    def _needs_xsched(self) -> bool:
        return any(plan.uses_xsched for plan in self.plans.values())

    def _discover_install(self) -> None:
        assert self.base is not None
        try:
            self.install = discover(self.target.fs(), self.base.env, self.options.xsched_prefix,
                                    self.options.platform)
        except XSchedOpsError:
            if self._needs_xsched():
                raise
            self.install = None

    def _write_run_meta(self) -> None:
        self.doctor_record = write_run_records(self.run_dir, self.run_id, self.target, self.options, self.install,
                                               self.base, self.mark)

    # -- one trial ----------------------------------------------------------------------------
    def _route(self) -> str | None:
        return self.options.route or (self.install.platform.default_route if self.install else None)

    def _timeout(self) -> float:
        if self.options.trial_timeout_s:
            return self.options.trial_timeout_s
        profile = self.profile
        return profile.warmup_s + profile.duration_s + profile.drain_s + STARTUP_MARGIN_S[self.options.backend]

    def run_trial(self, index: int, repeat: int, mode: str, progress: RunProgress) -> TrialMeta:
        plan = self.plans[mode]
        trial_dir = trial_dir_for(self.run_dir, index, mode)
        trial_dir.mkdir(parents=True, exist_ok=True)
        remote_dir = f"{TARGET_ROOT}/runs/{self.mark}-{index:02d}"
        assert self.base is not None
        mps = MpsDaemon(self.target, remote_dir, self.base.env, self.options.python) if plan.mps else None
        environments = trial_environments(self.base, self.install, self.target, self.profile, plan, self.mark,
                                          self.options.route, self.options.repair_env,
                                          mps.variables if mps else None)
        spec = build_spec(self.profile, backend=self.options.backend, output_dir=remote_dir,  # type: ignore[arg-type]
                          run_id=f"{self.run_id}-{index:02d}-{mode}", roles=plan.roles, placement=plan.placement,
                          role_env=environments.spec_env, device=self.options.device,
                          model_paths=self.model_paths, runtime=role_runtime(plan, self.install, self._route()))
        spec_path = trial_dir / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        write_environments(trial_dir, environments)
        meta = TrialMeta(
            mode=mode, repeat=repeat, placement=plan.label, backend=self.options.backend,
            simulated=self.options.backend == "sim", duration_s=self.profile.duration_s,
            target_rate=self.profile.high.rate, sla_ms=self.profile.sla_ms, role_env=environments.spec_env,
            started_wall=time.time(), status="partial", reason="running (the orchestrator did not finish it)",
            expected_xsched=plan.uses_xsched, workload_version=workload_version(),
        )
        write_trial_meta(trial_dir, meta)

        label = f"{index:02d} {mode}" + (f" (repeat {repeat + 1})" if self.options.repeat > 1 else "")
        feed = progress.trial(label, self.profile.duration_s)
        for note in environments.notes:
            progress.print(f"  [{label}] note: {note}")
        xserver: XServer | None = None
        exit_code: int | None = None
        timed_out = interrupted = False
        problem: str | None = None
        stderr_tail = ""
        try:
            self.target.exec(["mkdir", "-p", remote_dir], timeout=60)
            self.target.copy_in(spec_path, f"{remote_dir}/spec.json")
            if mps is not None:
                mps.start()
                progress.print(f"  [{label}] MPS control daemon started ({mps.pipe_dir})")
            if plan.uses_xsched:
                assert self.install is not None
                removed = clean_ipc(self.target, self.options.python)
                if removed:
                    progress.print(f"  [{label}] stale IPC state removed: {'; '.join(removed)}")
                xsched = self.profile.xsched
                xserver = XServer(self.target, self.install.xserver_path, xsched.xserver_policy, xsched.xserver_port,
                                  environments.launcher, self.mark, self.options.python)
                xserver.start()
                progress.print(f"  [{label}] xserver {xsched.xserver_policy} on port {xsched.xserver_port} "
                               f"answers GET /policy: {xserver.policy_answer}")
            argv = [self.options.python, f"{target_folder()}/{WORKLOAD_PACKAGE}/__main__.py", "run",
                    "--spec", f"{remote_dir}/spec.json"]
            with XServerWatch(self.target, self.mark, xserver):
                result = self.target.exec(argv, env=environments.launcher, timeout=self._timeout(),
                                          on_line=feed.on_line)
            exit_code, timed_out = result.exit_code, result.timed_out
            stderr_tail = result.stderr[-8000:]
            if exit_code != 0 and not self._target_still_runs():
                problem = f"the target {self.target.name!r} stopped during the trial (docker stop, kill or rm?)"
        except KeyboardInterrupt:
            interrupted = self.interrupted = True
        except XSchedOpsError as err:
            problem = err.one_line()
        finally:
            self._hold.start()  # from here a Ctrl-C waits until the trial is cleaned up and recorded
            self._cleanup(label, xserver, progress, mps)
        copied, copy_problems = pull_trial_files(self.target, remote_dir, trial_dir)
        if xserver is not None:
            (trial_dir / "xserver.log").write_text("\n".join(xserver.lines) + "\n", encoding="utf-8")
        (trial_dir / "workload-output.log").write_text("\n".join(feed.figures.other_lines) + "\n", encoding="utf-8")
        _best_effort(lambda: self.target.exec(["rm", "-rf", remote_dir], timeout=60))

        counts = recorded_counts(trial_dir)
        meta.ended_wall = time.time()
        meta.launcher_exit_code = exit_code
        if mps is not None:
            meta.mps = mps.view()
        if xserver is not None:
            meta.scheduler = xserver.view()
            (trial_dir / "scheduler.json").write_text(meta.scheduler.model_dump_json(indent=2) + "\n",
                                                      encoding="utf-8")
            if meta.scheduler.xserver_died and not (interrupted or problem):
                problem = (f"the xserver died during the trial ({meta.scheduler.xserver_end}); its clients would "
                           "hang, so the trial was ended")
        if exit_code == 0 and not (timed_out or interrupted or problem):
            meta.status, meta.reason = "complete", None
        else:
            meta.status = "partial" if counts["sample"] or counts["iteration"] else "failed"
            meta.reason = failure_reason(exit_code, timed_out, interrupted, problem, feed)
        if copy_problems:
            meta.reason = ((meta.reason + "; ") if meta.reason else "") + "not pulled: " + "; ".join(copy_problems)
        write_trial_meta(trial_dir, meta)
        feed.finish(meta.status)
        interrupted_meanwhile = self._hold.stop()
        if meta.status != "complete":
            raise trial_error(label, meta, counts, stderr_tail + "\n".join(feed.figures.other_lines), self.run_dir,
                              self.doctor_record, self.options.backend, trial_dir)
        if interrupted_meanwhile:  # the trial completed; the Ctrl-C stops the run now
            raise KeyboardInterrupt
        return meta

    def _target_still_runs(self, settle_s: float = 1.5) -> bool:
        """Whether the target still runs; a container killed under us may take a moment to say so."""
        deadline = time.monotonic() + settle_s
        while self.target.is_running():
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.25)
        return False

    def _cleanup(self, label: str, xserver: XServer | None, progress: RunProgress,
                 mps: MpsDaemon | None = None) -> None:
        """Stop the xserver, end anything of the run still alive in the target, remove IPC state, quit MPS."""
        if not self.target.is_running():  # stopped or removed under us: nothing is left to clean
            progress.print(f"  [{label}] the target does not run any more: no cleanup in it")
            return
        if mps is not None:
            _best_effort(mps.poll)  # the roles may still be listed as clients
        if xserver is not None:
            _best_effort(xserver.snapshot_xqueues)
            _best_effort(xserver.stop)
            progress.print(f"  [{label}] xserver ended: {xserver.end_description()}")
        leftover = _best_effort(lambda: end_marked(self.target, self.mark))
        if leftover:
            progress.print(f"  [{label}] ended {leftover} process(es) of the run still alive in the target")
        if xserver is not None:
            removed = _best_effort(lambda: clean_ipc(self.target, self.options.python))
            if removed:
                progress.print(f"  [{label}] IPC state left by the trial removed: {'; '.join(removed)}")
        if mps is not None:
            _best_effort(mps.stop)
            progress.print(f"  [{label}] MPS control daemon "
                           + ("stopped" if mps.stopped_cleanly else "did not stop on quit"))

    # -- the whole run ------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        self.base = base_environment(self.target)
        self._discover_install()
        if self._needs_xsched():
            refuse_if_xserver_runs(self.target, self.options.python)
        if any(plan.mps for plan in self.plans.values()):
            mps_preflight(self.target, self.install.platform.name if self.install else None,
                          self.base.env, self.options.python)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_run_meta()
        failure: XSchedOpsError | None = None
        try:
            stage_workload(self.target, self.profile, self.mark, self.model_paths)
            with RunProgress(self.console, self.options.show_progress) as progress:
                progress.print(f"run {self.run_id}: {len(self.order)} trial(s) "
                               f"({', '.join(mode for _, _, mode in self.order)}); environment: {self.base.source}")
                for index, repeat, mode in self.order:
                    try:
                        self.run_trial(index, repeat, mode, progress)
                    except XSchedOpsError as err:
                        failure = err
                        break
        except KeyboardInterrupt:
            self.interrupted = True
            failure = RunFailedError("interrupted (Ctrl-C)", f"what was measured is in {self.run_dir}")
        finally:
            self._hold.stop()  # also when a trial's bookkeeping failed with an unexpected error
            remove_staged_models(self.target, self.model_paths)
        result = finalize_run(self.run_dir)
        return RunOutcome(self.run_id, self.run_dir, result, failure, self.base.source, self.interrupted)


def _best_effort(action):
    """Run a clean-up step; an engine or target failure (the container went away) is not fatal."""
    try:
        return action()
    except XSchedOpsError:
        return None


def run_experiment(target: Target, options: ExperimentOptions, console: Console) -> RunOutcome:
    """Run every trial of ``options`` in ``target``; the results are finalized even when a trial fails."""
    return Experiment(target, options, console).run()
