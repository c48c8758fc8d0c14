"""Pulling a trial's files out of the target into ``results/<run-id>/trials/<NN>-<mode>/``."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from xsched_ops.errors import TargetPathError, XSchedOpsError
from xsched_ops.target.base import Target

# The workload's files (FORMAT.md): events-<role>.jsonl, launcher.jsonl, device.jsonl.
PULLED_SUFFIXES = (".jsonl",)


def pull_trial_files(target: Target, remote_dir: str, trial_dir: Path) -> tuple[list[str], list[str]]:
    """Copy the workload's JSON-lines files of ``remote_dir`` into ``trial_dir``; (copied names, problems).

    Files are copied one by one (the folder also holds the sim device's socket and the barrier),
    and a file that cannot be copied is reported, not fatal: what was measured is kept.
    """
    trial_dir.mkdir(parents=True, exist_ok=True)
    try:
        entries = target.list_dir(remote_dir)
    except TargetPathError as err:
        return [], [f"{remote_dir}: {err.message}"]
    except XSchedOpsError:
        # The target cannot run commands any more (a stopped container): its files can still be
        # read, so the folder comes out whole and only the workload's files are kept.
        return _pull_whole_folder(target, remote_dir, trial_dir)
    copied: list[str] = []
    problems: list[str] = []
    for entry in entries:
        if entry.kind != "file" or not entry.name.endswith(PULLED_SUFFIXES):
            continue
        try:
            target.copy_out(f"{remote_dir}/{entry.name}", trial_dir)
            copied.append(entry.name)
        except TargetPathError as err:
            problems.append(f"{entry.name}: {err.message}")
    return sorted(copied), problems


def recorded_counts(trial_dir: Path) -> dict[str, int]:
    """How many samples, iterations and start events the pulled files hold (unreadable lines skipped)."""
    counts = {"sample": 0, "iteration": 0, "start": 0}
    for path in trial_dir.glob("events-*.jsonl"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                kind = json.loads(line).get("event")
            except (ValueError, AttributeError):
                continue
            if kind in counts:
                counts[kind] += 1
    return counts


def _pull_whole_folder(target: Target, remote_dir: str, trial_dir: Path) -> tuple[list[str], list[str]]:
    with tempfile.TemporaryDirectory(prefix="xsched-ops-pull-") as staging:
        try:
            folder = target.copy_out(remote_dir, Path(staging))
        except XSchedOpsError as err:
            return [], [f"{remote_dir}: {err.message}"]
        copied = []
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name.endswith(PULLED_SUFFIXES):
                shutil.copyfile(path, trial_dir / path.name)
                copied.append(path.name)
        return copied, []
