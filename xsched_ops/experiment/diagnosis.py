"""Why a trial did not complete, said in one line: a failed run, or an invalid one with the doctor's hint.

A trial whose roles never started because the loader failed on the XSched environment, or whose
roles died of a signal while starting under it, is an invalid run (the XSched environment is at
fault, and the doctor says how); anything else is a failed run with what was kept.
"""

from __future__ import annotations

import signal
from pathlib import Path

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.ground_truth import LOADER_ERROR_MARKERS
from xsched_ops.errors import InvalidRunError, RunFailedError, XSchedOpsError
from xsched_ops.experiment.progress import TrialFeed
from xsched_ops.results import TrialMeta
from xsched_ops.results.events import read_jsonl

GPU_CHECK_ID = CheckId.GPU  # the doctor's check of the GPU device nodes

INVALID_RUN_HINT = ("the roles would have run without XSched; run `xsched-ops doctor` on the target, or "
                    "`xsched-ops fix-and-rerun PROFILE` to store a repaired environment and run again")


def failure_reason(exit_code: int | None, timed_out: bool, interrupted: bool, problem: str | None,
                   feed: TrialFeed) -> str:
    """The trial record's reason for a trial that did not complete."""
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


def trial_error(label: str, meta: TrialMeta, counts: dict[str, int], output: str, run_dir: Path,
                doctor_record: dict | None, backend: str, trial_dir: Path | None = None) -> XSchedOpsError:
    """The error that stops the run after the trial ``label`` did not complete."""
    loader_lines = [line.strip() for line in output.splitlines()
                    if any(marker in line for marker in LOADER_ERROR_MARKERS)]
    if counts["start"] == 0 and loader_lines and meta.expected_xsched:
        return InvalidRunError(
            f"trial {label}: no role started; the loader failed on the XSched environment: {loader_lines[0]}",
            INVALID_RUN_HINT,
        )
    killed = roles_killed_by_signal(trial_dir) if trial_dir is not None else {}
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
            INVALID_RUN_HINT + doctor_findings_hint(doctor_record, backend),
        )
    saved = "samples recorded so far are in the results, marked partial" if meta.status == "partial" \
        else "nothing was measured"
    return RunFailedError(f"trial {label} did not complete: {meta.reason}", f"{saved}: {run_dir}")


def doctor_findings_hint(doctor_record: dict | None, backend: str) -> str:
    """The doctor's failing findings recorded at the start of the run, as a hint; empty when none."""
    record = doctor_record or {}
    # The simulated backend needs no GPU, so a missing one is not why its roles died.
    ignored = {GPU_CHECK_ID} if backend == "sim" else set()
    failing = [f"{finding['id']}: {finding['title']}" for finding in record.get("findings", [])
               if finding.get("severity") in ("fail", "crash") and finding.get("id") not in ignored]
    return f" (the doctor found: {'; '.join(failing)})" if failing else ""


def roles_killed_by_signal(trial_dir: Path) -> dict[str, str]:
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
