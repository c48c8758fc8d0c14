"""Runs on disk: writing the orchestrator's records, finalizing, listing, loading, finding a baseline.

``finalize_run`` may be called any number of times, also on a partial run (a trial without its
``end`` events, a missing trial record): it analyses what is there and rewrites ``result.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from xsched_ops.errors import ResultsError
from xsched_ops.results.analysis import analyze_trial, summarize_mode
from xsched_ops.results.models import (
    MODES,
    SCHEMA_VERSION,
    Finding,
    RunMeta,
    RunResult,
    TrialMeta,
)

DEFAULT_RESULTS_DIR = Path("results")
RUN_META_FILE = "run.json"
RESULT_FILE = "result.json"
TRIALS_DIR = "trials"


# --------------------------------------------------------------------------- naming


def new_run_id(profile_name: str, now: float | None = None) -> str:
    """A sortable, readable run id: ``20250101-120000-intensive``."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in profile_name) or "run"
    return f"{stamp}-{safe}"


def run_dir_for(run_id: str, results_root: Path | str = DEFAULT_RESULTS_DIR) -> Path:
    return Path(results_root) / run_id


def trial_dir_for(run_dir: Path | str, index: int, mode: str) -> Path:
    """``<run_dir>/trials/<NN>-<mode>``; ``index`` counts trials of the run in execution order."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    return Path(run_dir) / TRIALS_DIR / f"{index:02d}-{mode}"


# --------------------------------------------------------------------------- writing


def _write_json_atomically(path: Path, model: BaseModel) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(model.model_dump_json(indent=2))
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_trial_meta(trial_dir: Path | str, meta: TrialMeta) -> Path:
    """Write ``trial.json`` in the trial folder (created if needed); returns its path."""
    return _write_json_atomically(Path(trial_dir) / "trial.json", meta)


def write_run_meta(run_dir: Path | str, meta: RunMeta) -> Path:
    """Write ``run.json`` in the run folder (created if needed); returns its path."""
    return _write_json_atomically(Path(run_dir) / RUN_META_FILE, meta)


def read_run_meta(run_dir: Path | str) -> tuple[RunMeta | None, str | None]:
    path = Path(run_dir) / RUN_META_FILE
    if not path.is_file():
        return None, f"{path} is missing"
    try:
        return RunMeta.model_validate_json(path.read_text(encoding="utf-8")), None
    except (ValidationError, ValueError) as err:
        return None, f"{path} is not a valid run record ({str(err).splitlines()[0]})"


# --------------------------------------------------------------------------- analysis


def profile_sla_ms(profile: dict) -> float | None:
    """The SLA in the resolved profile: ``sla_ms``, or ``sla`` as a number or a table with ``*_ms``."""
    value = profile.get("sla_ms")
    sla = profile.get("sla")
    if value is None and isinstance(sla, int | float) and not isinstance(sla, bool):
        value = sla
    if value is None and isinstance(sla, dict):
        value = next((sla[key] for key in ("latency_ms", "p99_ms", "ms") if key in sla), None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def analyze_run(run_dir: Path | str) -> RunResult:
    """Analyse every trial of a run folder, without writing anything."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResultsError(f"run folder {run_dir} does not exist", hint="list runs with `xsched-ops results list`")
    meta, meta_problem = read_run_meta(run_dir)
    findings: list[Finding] = []
    if meta_problem:
        findings.append(Finding(code="run-meta-missing", severity="error",
                                message=f"no usable run record: {meta_problem}"))
    sla_ms = profile_sla_ms(meta.profile) if meta else None
    trials_root = run_dir / TRIALS_DIR
    trial_dirs = sorted(path for path in trials_root.iterdir() if path.is_dir()) if trials_root.is_dir() else []
    trials = [analyze_trial(trial_dir, default_sla_ms=sla_ms) for trial_dir in trial_dirs]

    modes_present = [mode for mode in MODES if any(trial.mode == mode for trial in trials)]
    modes_present += sorted({trial.mode for trial in trials} - set(modes_present))
    summaries = {mode: summarize_mode(mode, [t for t in trials if t.mode == mode]) for mode in modes_present}

    statuses = [trial.meta.status if trial.meta else "partial" for trial in trials]
    if not trials:
        status = "empty"
        findings.append(Finding(code="no-trials", severity="error", message=f"no trials under {trials_root}"))
    elif all(value == "failed" for value in statuses):
        status = "failed"
    elif all(value == "complete" for value in statuses):
        status = "complete"
    else:
        status = "partial"
    return RunResult(
        run_id=meta.run_id if meta else run_dir.name,
        run_dir=str(run_dir.resolve()),
        meta=meta,
        status=status,
        valid=not any(f.severity == "error" for f in findings) and all(trial.valid for trial in trials),
        simulated=any(trial.simulated for trial in trials),
        trials=trials,
        modes=summaries,
        findings=findings,
        analyzed_wall=time.time(),
    )


def finalize_run(run_dir: Path | str) -> RunResult:
    """Analyse every trial and (re)write ``result.json``; safe to call again, also on a partial run."""
    result = analyze_run(run_dir)
    _write_json_atomically(Path(run_dir) / RESULT_FILE, result)
    return result


# --------------------------------------------------------------------------- finding and loading


def resolve_run_dir(ref: str | Path, results_root: Path | str = DEFAULT_RESULTS_DIR) -> Path:
    """A run given as a path to its folder (or its result.json), or as a run id under ``results_root``."""
    candidate = Path(ref)
    if candidate.is_file() and candidate.name in (RESULT_FILE, RUN_META_FILE):
        return candidate.parent
    if candidate.is_dir() and ((candidate / RUN_META_FILE).exists() or (candidate / TRIALS_DIR).is_dir()
                               or (candidate / RESULT_FILE).exists()):
        return candidate
    under_root = Path(results_root) / str(ref)
    if under_root.is_dir():
        return under_root
    raise ResultsError(f"no run {ref!r} (neither a run folder nor a run id under {results_root})",
                       hint="list runs with `xsched-ops results list`, or pass --results-dir")


def load_run(ref: str | Path, results_root: Path | str = DEFAULT_RESULTS_DIR) -> RunResult:
    """A run's result: its ``result.json`` when current, else analysed afresh (nothing is written)."""
    run_dir = resolve_run_dir(ref, results_root)
    result_path = run_dir / RESULT_FILE
    if result_path.is_file():
        try:
            raw = json.loads(result_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ResultsError(f"{result_path} is not JSON ({err})",
                               hint="remove it; it is rebuilt from the trials by `xsched-ops results show`") from err
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise ResultsError(f"{result_path} has schema version {version}; this xsched-ops reads up to "
                               f"{SCHEMA_VERSION}", hint="upgrade xsched-ops")
        if version == SCHEMA_VERSION and _result_is_fresh(run_dir, result_path):
            try:
                return RunResult.model_validate(raw)
            except ValidationError:
                pass  # an older layout of the same version: analyse again
    return analyze_run(run_dir)


def _result_is_fresh(run_dir: Path, result_path: Path) -> bool:
    """False when any trial file changed after result.json was written (e.g. a run still going)."""
    written = result_path.stat().st_mtime
    trials_root = run_dir / TRIALS_DIR
    newest = (run_dir / RUN_META_FILE).stat().st_mtime if (run_dir / RUN_META_FILE).exists() else 0.0
    if trials_root.is_dir():
        for path in trials_root.rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest <= written


@dataclass(frozen=True)
class RunListing:
    run_id: str
    run_dir: Path
    profile_name: str | None
    target_name: str | None
    modes: tuple[str, ...]
    status: str
    valid: bool | None
    simulated: bool
    created_wall: float | None
    finalized: bool


def list_runs(results_root: Path | str = DEFAULT_RESULTS_DIR) -> list[RunListing]:
    """Every run folder under ``results_root``, newest first."""
    root = Path(results_root)
    if not root.is_dir():
        return []
    listings: list[RunListing] = []
    for run_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        if not ((run_dir / RUN_META_FILE).exists() or (run_dir / TRIALS_DIR).is_dir()):
            continue
        try:
            result = load_run(run_dir, root)
        except ResultsError:
            continue
        created = result.meta.created_wall if result.meta else None
        if created is None:
            created = run_dir.stat().st_mtime
        listings.append(RunListing(
            run_id=result.run_id,
            run_dir=run_dir,
            profile_name=result.meta.profile_name if result.meta else None,
            target_name=result.meta.target_name if result.meta else None,
            modes=tuple(result.modes),
            status=result.status,
            valid=result.valid,
            simulated=result.simulated,
            created_wall=created,
            finalized=(run_dir / RESULT_FILE).is_file(),
        ))
    listings.sort(key=lambda listing: (listing.created_wall or 0.0, listing.run_id), reverse=True)
    return listings


def latest_valid_run(
    target_name: str,
    profile_name: str,
    mode: str,
    results_root: Path | str = DEFAULT_RESULTS_DIR,
) -> RunResult | None:
    """The newest run for this target and profile whose trials of ``mode`` exist and are all valid.

    (The fix-and-rerun command asks: is there a valid baseline for this container and profile?)
    """
    for listing in list_runs(results_root):
        if listing.target_name != target_name or listing.profile_name != profile_name:
            continue
        if mode not in listing.modes:
            continue
        result = load_run(listing.run_dir, results_root)
        if result.mode_valid(mode) and not any(f.severity == "error" for f in result.findings):
            return result
    return None
