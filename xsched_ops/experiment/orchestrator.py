"""One ``xsched-ops run``: set up, run every trial, always clean up, finalize the results.

Per trial: environments for the mode, the spec, (mode xsched) stale IPC removed and the xserver
started and polled until it answers, the workload launcher run as one streamed exec with a
timeout, then -- whatever happened -- the xserver stopped, anything of the run still alive in the
target ended, IPC state removed, the files pulled out and the trial record written (complete,
partial or failed). A trial that did not complete stops the run; what was measured is finalized.
"""

from __future__ import annotations

import json
import posixpath
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.ground_truth import LOADER_ERROR_MARKERS
from xsched_ops.environment.roles import (
    RUN_MARK_VARIABLE,
    BaseEnvironment,
    RoleEnvironment,
    base_environment,
    native_environment,
    spec_role_env,
    xsched_role_environment,
)
from xsched_ops.errors import InvalidRunError, RunFailedError, UsageError, XSchedOpsError
from xsched_ops.experiment.collect import pull_trial_files, recorded_counts
from xsched_ops.experiment.modes import DEFAULT_MODES, ModePlan, mode_plan, trial_order
from xsched_ops.experiment.mps import MpsDaemon
from xsched_ops.experiment.mps import preflight as mps_preflight
from xsched_ops.experiment.processes import end_marked
from xsched_ops.experiment.progress import RunProgress, TrialFeed
from xsched_ops.experiment.xserver import XServer, refuse_if_xserver_runs
from xsched_ops.profiles import Profile
from xsched_ops.results import (
    DEFAULT_RESULTS_DIR,
    RunMeta,
    RunResult,
    TrialMeta,
    XSchedFacts,
    finalize_run,
    new_run_id,
    run_dir_for,
    trial_dir_for,
    write_run_meta,
    write_trial_meta,
)
from xsched_ops.results.events import read_jsonl
from xsched_ops.target.base import Target
from xsched_ops.workload import SOURCE_DIR, TARGET_ROOT, WORKLOAD_PACKAGE, target_folder, workload_version
from xsched_ops.workload.spec import build_spec
from xsched_ops.xsched.install import XSchedInstall, discover
from xsched_ops.xsched.ipc_state import clean_ipc

GPU_CHECK_ID = CheckId.GPU  # the doctor's check of the GPU device nodes

# Time a trial may take beyond warm-up + window + drain before it is ended as timed out.
STARTUP_MARGIN_S = {"sim": 60.0, "torch": 300.0}


@dataclass
class ExperimentOptions:
    profile: Profile
    backend: str = "sim"
    modes: tuple[str, ...] = DEFAULT_MODES
    repeat: int = 1
    placement: str | None = None
    results_dir: Path = DEFAULT_RESULTS_DIR
    xsched_prefix: str | None = None
    platform: str | None = None
    route: str | None = None
    repair_env: bool = False
    python: str = "python3"
    device: str = "auto"
    command_line: list[str] = field(default_factory=list)
    trial_timeout_s: float | None = None
    show_progress: bool = True
    run_doctor: bool = True
    doctor_summary: dict | None = None  # given by fix-and-rerun, which ran the doctor itself


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    result: RunResult
    failure: XSchedOpsError | None = None  # the trial that stopped the run, if any
    environment_source: str = ""


@dataclass
class _TrialEnvironments:
    launcher: dict[str, str]
    roles: dict[str, RoleEnvironment]
    spec_env: dict[str, dict[str, str]]
    notes: list[str]


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
        self._hold = _InterruptHold()

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

    def _doctor(self) -> tuple[dict | None, dict]:
        """Doctor summary and target facts from its probe; a doctor that fails is recorded, not fatal."""
        if self.options.doctor_summary is not None or not self.options.run_doctor:
            return self.options.doctor_summary, {}
        try:
            from xsched_ops.doctor import DoctorContext, run_checks
            from xsched_ops.doctor.summary import summarize

            context = DoctorContext(target=self.target, xsched_prefix=self.options.xsched_prefix,
                                    platform_name=self.options.platform, route=self.options.route,
                                    probe_torch=self.options.backend == "torch")
            findings = run_checks(context)
            summary = summarize(findings)
            failing = [{"id": f.id, "severity": f.severity, "title": f.title} for f in findings
                       if f.severity in ("fail", "crash", "warn")]
            probe = context.probe
            facts = {key: probe[key] for key in ("python", "python_executable", "devices", "rocm", "torch",
                                                 "rocm_smi", "nvidia_smi") if key in probe}
            return {"summary": summary, "environment_source": context.environment_source,
                    "findings": failing}, facts
        except Exception as err:  # the doctor informs the record; it must not stop the run
            return {"error": f"could not collect: {type(err).__name__}: {err}"}, {}

    def _write_run_meta(self) -> None:
        doctor, probe_facts = self._doctor()
        self.doctor_record = doctor
        target_facts = {**asdict(self.target.facts()), **probe_facts}
        install = self.install
        meta = RunMeta(
            run_id=self.run_id,
            profile_name=self.profile.name,
            profile=self.profile.model_dump(mode="json"),
            target_name=self.target.name if self.target.kind != "local" else "local",
            target=target_facts,
            doctor=doctor,
            xsched=XSchedFacts(version=install.version if install else None,
                               prefix=install.prefix if install else None,
                               platform=install.platform.name if install else None),
            command_line=list(self.options.command_line),
            created_wall=time.time(),
        )
        write_run_meta(self.run_dir, meta)
        details = {"backend": self.options.backend, "modes": list(dict.fromkeys(self.options.modes)),
                   "repeat": self.options.repeat, "environment_source": self.base.source if self.base else None,
                   "repair_env": self.options.repair_env, "run_mark": self.mark,
                   "xsched_install": install.as_dict() if install else None}
        (self.run_dir / "experiment.json").write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")

    def _copy_workload(self) -> None:
        folder = target_folder()
        with tempfile.TemporaryDirectory(prefix="xsched-ops-workload-") as staging:
            clean = Path(staging) / WORKLOAD_PACKAGE
            for source in SOURCE_DIR.glob("*.py"):
                clean.mkdir(exist_ok=True)
                (clean / source.name).write_bytes(source.read_bytes())
            self.target.copy_in(clean, f"{folder}/{WORKLOAD_PACKAGE}")
        for role_name in ("high", "low"):
            model = getattr(self.profile, role_name).model
            if not model.startswith("file:"):
                continue
            path = Path(model[len("file:"):].rpartition(":")[0]).expanduser()
            if not path.is_file():
                raise UsageError(f"role {role_name}: model file {path} does not exist on this host",
                                 "give file:PATH:FACTORY with a path on this host; it is copied into the target")
            remote = f"{TARGET_ROOT}/runs/{self.mark}-models/{role_name}-{path.name}"
            self.target.copy_in(path, remote)
            self.model_paths[role_name] = remote

    # -- one trial ----------------------------------------------------------------------------
    def _environments(self, plan: ModePlan, extra: dict[str, str] | None = None) -> _TrialEnvironments:
        """The launcher's and each role's environment; ``extra`` (the MPS variables) goes to all of them."""
        assert self.base is not None
        extra = extra or {}
        native = {**native_environment(self.base.env, self.install), **extra}
        launcher = {**native, RUN_MARK_VARIABLE: self.mark}
        roles: dict[str, RoleEnvironment] = {}
        notes: list[str] = []
        for role in plan.roles:
            if plan.uses_xsched:
                assert self.install is not None
                roles[role] = xsched_role_environment(self.base, self.install, self.target.fs(), self.profile, role,
                                                      self.options.route, self.options.repair_env)
                roles[role].env.update(extra)
            else:
                roles[role] = RoleEnvironment(role, dict(native), "native")
        spec_env: dict[str, dict[str, str]] = {}
        for role, environment in roles.items():
            added, cannot_remove = spec_role_env(launcher, {**environment.env, RUN_MARK_VARIABLE: self.mark})
            spec_env[role] = added
            if cannot_remove:
                notes.append(f"role {role}: its environment lacks {', '.join(cannot_remove)} but inherits them "
                             "from the launcher")
        return _TrialEnvironments(launcher, roles, spec_env, notes)

    def _route(self) -> str | None:
        return self.options.route or (self.install.platform.default_route if self.install else None)

    def _role_runtime(self, plan: ModePlan) -> dict | None:
        """The runtime entry point each XSched role calls first, as an application starts its runtime.

        Route libpath: from the runtime loaded by its application name (the only way the shim gets
        in); route preload: as the process has it (the preloaded shim's). Either way the shim's HAL
        then looks for the real runtime, so a HAL pointed at the shim shows in the run.
        """
        if not plan.uses_xsched or self.install is None:
            return None
        platform = self.install.platform
        library = platform.application_soname if self._route() == "libpath" else None
        return {"library": library, "init_symbol": platform.init_symbol,
                "file_prefix": platform.application_soname.split(".so")[0] + ".so"}

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
        mps = MpsDaemon(self.target, remote_dir, self.base.env if self.base else {}, self.options.python) \
            if plan.mps else None
        environments = self._environments(plan, mps.variables if mps else None)
        spec = build_spec(self.profile, backend=self.options.backend, output_dir=remote_dir,  # type: ignore[arg-type]
                          run_id=f"{self.run_id}-{index:02d}-{mode}", roles=plan.roles, placement=plan.placement,
                          role_env=environments.spec_env, device=self.options.device,
                          model_paths=self.model_paths, runtime=self._role_runtime(plan))
        spec_path = trial_dir / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        self._write_environments(trial_dir, environments)
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
            with _XServerWatch(self.target, self.mark, xserver):
                result = self.target.exec(argv, env=environments.launcher, timeout=self._timeout(),
                                          on_line=feed.on_line)
            exit_code, timed_out = result.exit_code, result.timed_out
            stderr_tail = result.stderr[-8000:]
            if exit_code != 0 and not self._target_still_runs():
                problem = f"the target {self.target.name!r} stopped during the trial (docker stop, kill or rm?)"
        except KeyboardInterrupt:
            interrupted = True
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
            meta.reason = self._failure_reason(exit_code, timed_out, interrupted, problem, feed)
        if copy_problems:
            meta.reason = ((meta.reason + "; ") if meta.reason else "") + "not pulled: " + "; ".join(copy_problems)
        write_trial_meta(trial_dir, meta)
        feed.finish(meta.status)
        interrupted_meanwhile = self._hold.stop()
        if meta.status != "complete":
            raise self._trial_error(label, meta, counts, stderr_tail + "\n".join(feed.figures.other_lines),
                                    trial_dir)
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

    def _write_environments(self, trial_dir: Path, environments: _TrialEnvironments) -> None:
        documents = {"launcher": {"method": "native", "env": environments.launcher}}
        for role, environment in environments.roles.items():
            documents[role] = {"method": environment.method, "env": environment.env,
                               "added_to_launcher_env": environments.spec_env.get(role, {}),
                               "notes": environment.notes}
        for name, document in documents.items():
            (trial_dir / f"environment-{name}.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n",
                                                                 encoding="utf-8")

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

    @staticmethod
    def _failure_reason(exit_code: int | None, timed_out: bool, interrupted: bool, problem: str | None,
                        feed: TrialFeed) -> str:
        if interrupted:
            return "interrupted (Ctrl-C)"
        if timed_out:
            return "timed out: the trial's processes were ended"
        if problem:
            return problem
        failed_roles = [f"{role}: {event.get('error')}" for role, event in feed.figures.ended_roles.items()
                        if event.get("status") != "ok"]
        reason = f"the workload launcher exited with code {exit_code}"
        if failed_roles:
            reason += " (" + "; ".join(failed_roles) + ")"
        return reason

    def _trial_error(self, label: str, meta: TrialMeta, counts: dict[str, int], output: str,
                     trial_dir: Path | None = None) -> XSchedOpsError:
        loader_lines = [line.strip() for line in output.splitlines()
                        if any(marker in line for marker in LOADER_ERROR_MARKERS)]
        hint = ("the roles would have run without XSched; run `xsched-ops doctor` on the target, or "
                "`xsched-ops fix-and-rerun PROFILE` to store a repaired environment and run again")
        if counts["start"] == 0 and loader_lines and meta.expected_xsched:
            return InvalidRunError(
                f"trial {label}: no role started; the loader failed on the XSched environment: {loader_lines[0]}",
                hint,
            )
        killed = _roles_killed_by_signal(trial_dir) if trial_dir is not None else {}
        if counts["start"] == 0 and killed and meta.expected_xsched:
            # Died of a signal before their start event, i.e. while loading or starting the runtime
            # under XSched: the XSched environment is at fault, and the doctor says how.
            said = [line.split(":", 1)[1].strip() for line in output.splitlines()
                    if line.startswith("stderr:") and line.split(":", 1)[1].strip()]
            roles = ", ".join(f"{role} ({signal_name})" for role, signal_name in killed.items())
            because = f": {said[-1]}" if said else ""
            return InvalidRunError(
                f"trial {label}: no role started; {roles} died while starting under the XSched "
                f"environment{because}",
                hint + self._doctor_findings_hint(),
            )
        saved = "samples recorded so far are in the results, marked partial" if meta.status == "partial" \
            else "nothing was measured"
        return RunFailedError(f"trial {label} did not complete: {meta.reason}", f"{saved}: {self.run_dir}")

    def _doctor_findings_hint(self) -> str:
        record = self.doctor_record or {}
        # The simulated backend needs no GPU, so a missing one is not why its roles died.
        ignored = {GPU_CHECK_ID} if self.options.backend == "sim" else set()
        failing = [f"{finding['id']}: {finding['title']}" for finding in record.get("findings", [])
                   if finding.get("severity") in ("fail", "crash") and finding.get("id") not in ignored]
        return f" (the doctor found: {'; '.join(failing)})" if failing else ""

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
            self._copy_workload()
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
            failure = RunFailedError("interrupted (Ctrl-C)", f"what was measured is in {self.run_dir}")
        finally:
            self._hold.stop()  # also when a trial's bookkeeping failed with an unexpected error
            if self.model_paths:
                try:
                    self.target.exec(["rm", "-rf", posixpath.dirname(next(iter(self.model_paths.values())))],
                                     timeout=60)
                except XSchedOpsError:
                    pass
        result = finalize_run(self.run_dir)
        return RunOutcome(self.run_id, self.run_dir, result, failure, self.base.source)


def _best_effort(action):
    """Run a clean-up step; an engine or target failure (the container went away) is not fatal."""
    try:
        return action()
    except XSchedOpsError:
        return None


class _XServerWatch:
    """While a trial's workload runs: keep the xserver's ``GET /xqueues`` answers, and end the trial
    at once when the xserver dies (its GLB clients would hang: XSCHED-FACTS.md section 1)."""

    POLL_S = 0.5
    SNAPSHOT_EVERY_S = 10.0  # each is an exec in the target: few, the log is the main evidence

    def __init__(self, target: Target, mark: str, xserver: XServer | None) -> None:
        self.target = target
        self.mark = mark
        self.xserver = xserver
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        assert self.xserver is not None
        next_snapshot = time.monotonic() + 3.0
        while not self._done.wait(self.POLL_S):
            if self.xserver.died:
                try:
                    end_marked(self.target, self.mark)  # the launcher and its roles
                except XSchedOpsError:
                    pass
                return
            if time.monotonic() >= next_snapshot:
                try:
                    self.xserver.snapshot_xqueues()
                except XSchedOpsError:
                    pass
                next_snapshot = time.monotonic() + self.SNAPSHOT_EVERY_S

    def __enter__(self) -> _XServerWatch:
        if self.xserver is not None:
            self._thread = threading.Thread(target=self._watch, name="xserver-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(10)


class _InterruptHold:
    """Holds Ctrl-C back while a trial is cleaned up and recorded, so that it is not cut short.

    Otherwise a Ctrl-C at the end of a trial (the xserver being stopped, the files being pulled)
    would leave the xserver, IPC state or the trial's folder in the target, and a trial record
    that still says "running". The first Ctrl-C is noted (``stop`` says whether one came); a
    second one interrupts at once. Only the main thread can hold signals; elsewhere this does nothing.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous: object = None
        self._active = False

    def _handle(self, signum: int, frame: object) -> None:
        if self.received:
            raise KeyboardInterrupt
        self.received = True

    def start(self) -> None:
        if self._active or threading.current_thread() is not threading.main_thread():
            return
        self.received = False
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        self._active = True

    def stop(self) -> bool:
        """Let Ctrl-C through again; whether one came while held."""
        if self._active:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]
            self._active = False
        received, self.received = self.received, False
        return received


def _roles_killed_by_signal(trial_dir: Path) -> dict[str, str]:
    """Roles whose process the launcher saw end by a signal (launcher.jsonl), with the signal's name."""
    killed: dict[str, str] = {}
    for event in read_jsonl(trial_dir / "launcher.jsonl").of("launcher"):
        code = event.get("returncode")
        if event.get("what") == "role_exited" and isinstance(code, int) and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            killed[str(event.get("role"))] = name
    return killed


def run_experiment(target: Target, options: ExperimentOptions, console: Console) -> RunOutcome:
    """Run every trial of ``options`` in ``target``; the results are finalized even when a trial fails."""
    return Experiment(target, options, console).run()
