"""Runs on disk: writing the orchestrator's records, finalizing, listing, loading, finding a baseline.

``finalize_run`` may be called any number of times, also on a partial run (a trial without its
``end`` events, a missing trial record): it analyses what is there and rewrites ``result.json``.

A run folder is recognised by its ``run.json`` (a valid ``RunMeta`` of a known schema version),
never guessed from its contents: ``results show``, ``compare`` and ``report`` refuse anything
else (``ResultsError``, exit 23) in one line saying what is wrong; ``results list`` lists damaged
runs with their problem instead of hiding them. A run id is one folder name under the results
folder (no ``/``, ``..``).
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
EXPERIMENT_FILE = "experiment.json"
_MAX_RECORD_BYTES = 64 << 20  # a run.json or result.json larger than this is not one


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


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _read_json_record(path: Path) -> tuple[object, str | None]:
    """The JSON value in ``path``, or None and why it cannot be read (one line)."""
    try:
        size = path.stat().st_size
        if size > _MAX_RECORD_BYTES:
            return None, f"{path} is {size} bytes, too large for a run record"
        data = path.read_bytes()
    except OSError as err:
        return None, f"{path} cannot be read ({err.strerror or err})"
    if not data.strip():
        return None, f"{path} is empty"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"{path} is not UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start})"
    try:
        return json.loads(text), None
    except ValueError as err:
        return None, f"{path} is not JSON ({_first_line(err)}): damaged or cut short"
    except RecursionError:
        return None, f"{path} is not a run record (JSON nested too deeply)"


def _schema_problem(path: Path, raw: object) -> str | None:
    """Why ``raw`` is not a record of a schema version this xsched-ops reads (None when it is)."""
    if not isinstance(raw, dict):
        return f"{path} holds a JSON {type(raw).__name__}, not a run record"
    version = raw.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        return f"{path} has no schema_version: not a run record of xsched-ops"
    if version > SCHEMA_VERSION:
        return f"{path} has schema version {version}; this xsched-ops reads up to {SCHEMA_VERSION} (upgrade xsched-ops)"
    if version < 1:
        return f"{path} has schema version {version}, which no xsched-ops wrote (1..{SCHEMA_VERSION})"
    return None


def read_run_meta(run_dir: Path | str) -> tuple[RunMeta | None, str | None]:
    """The run's ``run.json`` (valid, of a known schema version), or None and why not (one line)."""
    path = Path(run_dir) / RUN_META_FILE
    if not path.is_file():
        return None, f"{path} is missing"
    raw, problem = _read_json_record(path)
    if problem is None:
        problem = _schema_problem(path, raw)
    if problem is not None:
        return None, problem
    try:
        return RunMeta.model_validate(raw), None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        return None, f"{path} is not a valid run record (key {where}: {first['msg']})"


def run_folder_problem(path: Path | str) -> str | None:
    """None when ``path`` is a run folder (its run.json valid, of a known schema version), else why not."""
    path = Path(path)
    if not path.is_dir():
        return f"{path} is not a folder"
    if not (path / RUN_META_FILE).exists():
        return f"{path} is not a run folder: it has no {RUN_META_FILE}"
    return read_run_meta(path)[1]


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
    findings.extend(_missing_trial_findings(run_dir, trial_dirs))

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


def _missing_trial_findings(run_dir: Path, trial_dirs: list[Path]) -> list[Finding]:
    """Trials deleted from the run: a gap in the trial numbers, or fewer than experiment.json planned.

    The orchestrator numbers trials without gaps in the order it runs them, and stops early only on
    a failure (which leaves that trial partial, so the run is invalid anyway); a missing number, or a
    complete-looking run with fewer trials than planned, means trials were removed afterwards.
    """
    indices = sorted(int(path.name.split("-", 1)[0]) for path in trial_dirs
                     if path.name.split("-", 1)[0].isdigit() and "-" in path.name)
    findings: list[Finding] = []
    if indices:
        gaps = sorted(set(range(indices[0], indices[-1] + 1)) - set(indices))
        if gaps:
            shown = ", ".join(f"{index:02d}" for index in gaps[:5]) + (" ..." if len(gaps) > 5 else "")
            findings.append(Finding(code="trials-missing", severity="error",
                                    message=f"trial(s) {shown} missing from {run_dir / TRIALS_DIR}: "
                                            "the run's trials were numbered without gaps, so these were removed"))
    planned = _planned_trials(run_dir)
    if planned is not None and len(trial_dirs) < planned and not findings:
        findings.append(Finding(code="trials-missing", severity="error",
                                message=f"{len(trial_dirs)} of the {planned} trials planned in "
                                        f"{EXPERIMENT_FILE} are in {run_dir / TRIALS_DIR}"))
    return findings


def _planned_trials(run_dir: Path) -> int | None:
    """len(modes) * repeat from the run's experiment.json, None when it is missing or unreadable."""
    path = run_dir / EXPERIMENT_FILE
    if not path.is_file():
        return None
    raw, problem = _read_json_record(path)
    if problem is not None or not isinstance(raw, dict):
        return None
    modes, repeat = raw.get("modes"), raw.get("repeat")
    if not isinstance(modes, list) or isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        return None
    return len(set(map(str, modes))) * repeat


def finalize_run(run_dir: Path | str) -> RunResult:
    """Analyse every trial and (re)write ``result.json``; safe to call again, also on a partial run."""
    result = analyze_run(run_dir)
    _write_json_atomically(Path(run_dir) / RESULT_FILE, result)
    return result


# --------------------------------------------------------------------------- finding and loading


def _is_run_id(text: str) -> bool:
    """One folder name: no separator, not ``.`` or ``..`` (so that a run id never leaves the results folder)."""
    return bool(text) and "/" not in text and os.sep not in text and text not in (".", "..")


def resolve_run_dir(ref: str | Path, results_root: Path | str = DEFAULT_RESULTS_DIR) -> Path:
    """A run given as a path to its folder (or its run.json/result.json), or as a run id under ``results_root``.

    Only a run folder (``run_folder_problem`` is None) is accepted; anything else is a ``ResultsError``
    saying what is wrong with it.
    """
    text = str(ref)
    hint = "list runs with `xsched-ops results list`, or pass --results-dir"
    if not text.strip() or "\0" in text:
        raise ResultsError(f"{text!r} is not a run id or folder", hint=hint)
    candidate = Path(text)
    if candidate.name in (RESULT_FILE, RUN_META_FILE) and candidate.is_file():
        candidate = candidate.parent
    problem = None
    if candidate.is_dir():
        problem = run_folder_problem(candidate)
        if problem is None:
            return candidate
    if _is_run_id(text):
        under_root = Path(results_root) / text
        if under_root.is_dir():
            under_problem = run_folder_problem(under_root)
            if under_problem is None:
                return under_root
            problem = problem or under_problem
    if problem is not None:
        raise ResultsError(f"not a usable run: {problem}", hint=hint)
    raise ResultsError(f"no run {text!r} (neither a run folder nor a run id under {results_root})", hint=hint)


def load_run(ref: str | Path, results_root: Path | str = DEFAULT_RESULTS_DIR) -> RunResult:
    """A run's result: its ``result.json`` when current, else analysed afresh (nothing is written)."""
    run_dir = resolve_run_dir(ref, results_root)
    result_path = run_dir / RESULT_FILE
    if result_path.is_file():
        raw, problem = _read_json_record(result_path)
        if problem is not None:
            raise ResultsError(problem,
                               hint="remove it; it is rebuilt from the trials by `xsched-ops results show`")
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
    """False when any trial file changed after result.json was written (e.g. a run still going), or was
    added or removed (the folders' own times change: a deleted events file or trial is seen)."""
    try:
        written = result_path.stat().st_mtime_ns
        trials_root = run_dir / TRIALS_DIR
        newest = (run_dir / RUN_META_FILE).stat().st_mtime_ns if (run_dir / RUN_META_FILE).exists() else 0
        if trials_root.is_dir():
            newest = max(newest, trials_root.stat().st_mtime_ns)
            for path in trials_root.rglob("*"):
                newest = max(newest, path.stat().st_mtime_ns)
    except OSError:
        return False
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
    problem: str | None = None  # a damaged run: what is wrong (it cannot be shown, compared or reported)


def list_runs(results_root: Path | str = DEFAULT_RESULTS_DIR) -> list[RunListing]:
    """Every run folder under ``results_root``, newest first.

    A folder that looks like a run (it has a run.json, a result.json or trials/) but cannot be read as
    one is listed too, with ``status`` "damaged", no modes and ``problem`` saying what is wrong.
    """
    root = Path(results_root)
    if not root.is_dir():
        return []
    listings: list[RunListing] = []
    for run_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        if not ((run_dir / RUN_META_FILE).exists() or (run_dir / TRIALS_DIR).is_dir()
                or (run_dir / RESULT_FILE).exists()):
            continue
        problem = run_folder_problem(run_dir)
        if problem is not None:
            listings.append(_damaged_listing(run_dir, problem))
            continue
        try:
            result = load_run(run_dir, root)
        except ResultsError as err:
            listings.append(_damaged_listing(run_dir, err.message))
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


def _damaged_listing(run_dir: Path, problem: str) -> RunListing:
    meta, _ = read_run_meta(run_dir)
    try:
        created = meta.created_wall if meta and meta.created_wall else run_dir.stat().st_mtime
    except OSError:
        created = None
    return RunListing(
        run_id=run_dir.name, run_dir=run_dir,
        profile_name=meta.profile_name if meta else None, target_name=meta.target_name if meta else None,
        modes=(), status="damaged", valid=False, simulated=False, created_wall=created,
        finalized=(run_dir / RESULT_FILE).is_file(), problem=" ".join(problem.split()),
    )


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
