"""Pydantic models of a run on disk: what the orchestrator writes and what analysis produces.

Layout of one run (the root folder is configurable, default ``./results``)::

    results/<run-id>/run.json                    RunMeta (written by the orchestrator at start)
    results/<run-id>/trials/<NN>-<mode>/trial.json   TrialMeta (one per mode and repeat)
    results/<run-id>/trials/<NN>-<mode>/events-<role>.jsonl, launcher.jsonl, device.jsonl
    results/<run-id>/result.json                 RunResult (written by ``finalize_run``)

Every JSON file carries ``schema_version``; readers refuse a newer major version than they know.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

Mode = Literal["standalone", "baseline", "xsched", "priority-streams"]
MODES: tuple[str, ...] = ("standalone", "baseline", "xsched", "priority-streams")
TrialStatus = Literal["complete", "partial", "failed"]
Severity = Literal["error", "warning", "note"]

# Sample counts below which a percentile rests on fewer than ~6.6 samples beyond it
# (the issue's thresholds: 662 for P99, 6636 for P99.9).
MIN_SAMPLES_P99 = 662
MIN_SAMPLES_P999 = 6636
# An offered (issued) arrival rate more than this fraction under the target invalidates a trial.
RATE_TOLERANCE = 0.01
DEFAULT_SLA_MS = 100.0


class _Model(BaseModel):
    # Files written by newer minor versions may carry keys this version does not know.
    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------- written by the orchestrator


class SchedulerXQueue(_Model):
    """One XQueue as the xserver reported it (its log, ``GET /xqueues``)."""

    handle: str
    priority: int | None = None
    level: int | None = None
    threshold: int | None = None
    batch_size: int | None = None


class SchedulerProcess(_Model):
    """A client process the xserver saw: connected, its XQueues, whether it closed."""

    pid: int
    cmdline: str = ""
    closed: bool = False
    xqueues: list[SchedulerXQueue] = Field(default_factory=list)


class SchedulerView(_Model):
    """What the scheduler itself saw during a trial (XSCHED-FACTS.md sections 2-3).

    ``available`` is false when no xserver ran (a local or app-managed scheduler): ``note`` then
    says what was used instead.
    """

    available: bool
    source: str = ""
    policy: str | None = None
    processes: list[SchedulerProcess] = Field(default_factory=list)
    xserver_end: str | None = Field(default=None, description="How the xserver ended, e.g. 'SIGINT (exit code 0)'.")
    xserver_died: bool = Field(default=False, description="It ended by itself during the trial.")
    note: str | None = None

    def process(self, pid: int | None) -> SchedulerProcess | None:
        return next((process for process in self.processes if process.pid == pid), None)


class MpsView(_Model):
    """What the NVIDIA MPS control daemon of a trial reported (placement mps)."""

    pipe_directory: str
    servers: list[int] = Field(default_factory=list)
    clients: list[int] = Field(default_factory=list, description="Client pids its servers listed during the trial.")
    stopped_cleanly: bool | None = None


class TrialMeta(_Model):
    """Metadata of one trial (one mode, one repeat), written as ``trial.json`` beside its event files."""

    schema_version: int = SCHEMA_VERSION
    mode: Mode
    repeat: int = Field(ge=0, description="Repeat index, 0-based.")
    placement: str = Field(description="processes | streams | shared-stream | priority-streams | mps")
    backend: str = Field(description="sim | torch")
    simulated: bool
    duration_s: float = Field(gt=0, description="Measurement window [0, duration_s) relative to t0.")
    target_rate: float | None = Field(
        default=None, gt=0, description="High-priority target rate (req/s); None: read from the start event."
    )
    sla_ms: float | None = Field(default=None, gt=0, description="None: the run's profile, else 100 ms.")
    role_env: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Environment added to each role (role name -> variables); its keys are the expected roles.",
    )
    started_wall: float | None = None
    ended_wall: float | None = None
    status: TrialStatus = "complete"
    reason: str | None = None
    launcher_exit_code: int | None = None
    expected_xsched: bool | None = Field(
        default=None, description="Whether every role must run under XSched; None: true exactly for mode xsched."
    )
    workload_version: str | None = None
    scheduler: SchedulerView | None = Field(default=None, description="The xserver's own view (mode xsched).")
    mps: MpsView | None = Field(default=None, description="The MPS daemon's view (placement mps).")

    @model_validator(mode="after")
    def _default_expected_xsched(self) -> TrialMeta:
        if self.expected_xsched is None:
            self.expected_xsched = self.mode == "xsched"
        return self


class XSchedFacts(_Model):
    version: str | None = None
    prefix: str | None = None
    platform: str | None = None


class RunMeta(_Model):
    """Run-level metadata, written as ``run.json`` when the run starts."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    profile_name: str
    profile: dict = Field(default_factory=dict, description="The resolved profile (overrides applied).")
    target_name: str = Field(description="Container name, or 'local' for this host.")
    target: dict = Field(default_factory=dict, description="Target facts (GPU, ROCm/HIP or CUDA, torch, ...).")
    doctor: dict | None = Field(default=None, description="Doctor summary, None when doctor did not run.")
    xsched: XSchedFacts = Field(default_factory=XSchedFacts)
    command_line: list[str] = Field(default_factory=list)
    created_wall: float | None = None


# --------------------------------------------------------------------------- produced by analysis


class Finding(_Model):
    """One validity finding: an ``error`` makes its trial invalid; warnings and notes are recorded."""

    code: str
    severity: Severity
    message: str
    role: str | None = None


class Distribution(_Model):
    """Summary of a sample of durations, in milliseconds (None when there are no samples)."""

    count: int
    mean: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None


class Trend(_Model):
    """Latency over the window: does the queue grow (load not sustained)?"""

    first_third_median_ms: float | None = None
    last_third_median_ms: float | None = None
    slope_ms_per_s: float | None = None
    queue_grows: bool = False


class HighRoleStats(_Model):
    """The open-loop (high-priority) role of one trial."""

    role: str
    window_s: float
    target_rate: float | None
    requests: int = Field(description="Requests of the trace recorded (intended in the window).")
    issued_in_window: int
    completed_in_window: int
    completed: int = Field(description="Requests served, within the window or in the drain after it.")
    unfinished: int = Field(description="Censored: still unserved when the drain ended.")
    errors: int
    issued_rate: float
    achieved_rate: float = Field(description="Requests completed in the window / window.")
    achieved_fraction: float | None = Field(description="achieved_rate / target_rate.")
    load_sustained: bool
    latency_ms: Distribution = Field(description="done - intended; censored requests count at their lower bound.")
    latency_is_lower_bound: bool = False
    issue_delay_ms: Distribution
    queueing_ms: Distribution
    service_ms: Distribution
    sla_ms: float
    sla_violations: int
    sla_violation_pct: float | None
    trend: Trend


class ClosedLoopStats(_Model):
    """A closed-loop (low-priority) role, within the high-priority role's window."""

    role: str
    window_s: float
    batch: int | None
    iterations_in_window: float = Field(description="Iterations clipped to the window (fractional at the edges).")
    whole_iterations_in_window: int = Field(description="Iterations that began and ended inside the window.")
    images_in_window: float
    iter_per_s: float
    images_per_s: float
    mean_iteration_ms: float | None


class RuntimeLoad(_Model):
    """The role loaded the GPU runtime by name and called its entry point (spec ``runtime``)."""

    library: str | None = Field(default=None, description="Loaded by this name; None: from the process as it was.")
    init_symbol: str
    init_result: int | None = None
    init_defined_in: str | None = Field(default=None, description="The file defining the entry point (dladdr).")
    init_defined_in_real: str | None = None
    mapped_files: list[str] = Field(default_factory=list,
                                    description="Files named like the runtime mapped after the entry point ran.")
    note: str | None = None


class RoleEvidence(_Model):
    """What a role's process said about XSched in its ``start`` event, and how it ended."""

    role: str
    kind: str | None = None
    pid: int | None = None
    model: str | None = None
    batch: int | None = None
    started: bool = False
    ended: bool = False
    end_status: str | None = None
    end_error: str | None = None
    shim_mapped: bool | None = None
    shim_paths: list[str] = Field(default_factory=list)
    xsched_env: dict[str, str] = Field(default_factory=dict)
    ld_preload: str | None = None
    ld_library_path: str | None = None
    runtime: RuntimeLoad | None = None
    sim_xsched_active: bool | None = None
    sim_reason: str | None = None
    scheduler_connected: bool | None = Field(default=None, description="The xserver saw the role's pid connect.")
    scheduler_priorities: list[int] = Field(default_factory=list, description="Priority of each of its XQueues.")
    configured_env: dict[str, str] = Field(default_factory=dict, description="What the orchestrator set (trial.json).")


class TrialAnalysis(_Model):
    trial_id: str = Field(description="The trial folder's name, e.g. 03-xsched.")
    mode: str
    repeat: int
    meta: TrialMeta | None
    simulated: bool
    high: HighRoleStats | None
    closed_loop: dict[str, ClosedLoopStats] = Field(default_factory=dict)
    roles: dict[str, RoleEvidence] = Field(default_factory=dict)
    findings: list[Finding] = Field(default_factory=list)
    valid: bool

    @property
    def low(self) -> ClosedLoopStats | None:
        """The low-priority role: the one named ``low``, else the first closed-loop role."""
        if "low" in self.closed_loop:
            return self.closed_loop["low"]
        return next(iter(self.closed_loop.values()), None)

    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]


class Interval(_Model):
    """Mean over repeats with a 95 % confidence interval (Student t); no interval with one repeat."""

    n: int
    mean: float | None
    low: float | None = None
    high: float | None = None
    values: list[float] = Field(default_factory=list)
    method: str = Field(description="'t-interval 95%' or 'n=1, no interval' or 'no data'.")

    def describe(self, digits: int = 2) -> str:
        if self.mean is None:
            return "n/a"
        if self.low is None or self.high is None:
            return f"{self.mean:.{digits}f} (n={self.n}, no interval)"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n={self.n})"


class ModeSummary(_Model):
    """Statistics of one mode across its valid repeats."""

    mode: str
    trials: list[str]
    valid_trials: list[str]
    p50_ms: Interval
    p99_ms: Interval
    p999_ms: Interval
    max_ms: Interval
    achieved_rate: Interval
    target_rate: float | None
    sla_violation_pct: Interval
    low_iter_per_s: Interval
    low_images_per_s: Interval
    load_sustained: bool = Field(description="True when every valid repeat sustained the offered load.")
    samples: int = Field(description="High-priority samples over the valid repeats.")


RunStatus = Literal["complete", "partial", "failed", "empty"]


class RunResult(_Model):
    """``result.json``: every trial analysed, per-mode statistics, the run's validity."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    run_dir: str
    meta: RunMeta | None
    status: RunStatus
    valid: bool
    simulated: bool
    trials: list[TrialAnalysis]
    modes: dict[str, ModeSummary]
    findings: list[Finding] = Field(default_factory=list, description="Run-level findings.")
    analyzed_wall: float

    def trials_of(self, mode: str) -> list[TrialAnalysis]:
        return [trial for trial in self.trials if trial.mode == mode]

    def mode_valid(self, mode: str) -> bool:
        trials = self.trials_of(mode)
        return bool(trials) and all(trial.valid for trial in trials)
