"""What one ``xsched-ops run`` is asked to do (``ExperimentOptions``) and what it gives back (``RunOutcome``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xsched_ops.errors import XSchedOpsError
from xsched_ops.experiment.modes import DEFAULT_MODES
from xsched_ops.profiles import Profile
from xsched_ops.results import DEFAULT_RESULTS_DIR, RunResult


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
    interrupted: bool = False  # Ctrl-C stopped it (a caller running several runs stops too)
