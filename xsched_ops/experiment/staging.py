"""What a run puts in the target before its trials: the workload package and the profile's model files."""

from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path

from xsched_ops.errors import UsageError, XSchedOpsError
from xsched_ops.profiles import Profile
from xsched_ops.target.base import Target
from xsched_ops.workload import SOURCE_DIR, TARGET_ROOT, WORKLOAD_PACKAGE, target_folder

ROLE_NAMES = ("high", "low")


def stage_workload(target: Target, profile: Profile, mark: str, model_paths: dict[str, str]) -> None:
    """Copy the workload package (every module of it, nothing else) and the roles' ``file:`` models
    into the target. ``model_paths`` gets where each role's model is in the target as it is copied,
    so that what was copied is removed even when a later copy fails."""
    folder = target_folder()
    with tempfile.TemporaryDirectory(prefix="xsched-ops-workload-") as staging:
        clean = Path(staging) / WORKLOAD_PACKAGE
        for source in SOURCE_DIR.glob("*.py"):
            clean.mkdir(exist_ok=True)
            (clean / source.name).write_bytes(source.read_bytes())
        target.copy_in(clean, f"{folder}/{WORKLOAD_PACKAGE}")
    for role_name in ROLE_NAMES:
        model = getattr(profile, role_name).model
        if not model.startswith("file:"):
            continue
        path = Path(model[len("file:"):].rpartition(":")[0]).expanduser()
        if not path.is_file():
            raise UsageError(f"role {role_name}: model file {path} does not exist on this host",
                             "give file:PATH:FACTORY with a path on this host; it is copied into the target")
        remote = f"{TARGET_ROOT}/runs/{mark}-models/{role_name}-{path.name}"
        target.copy_in(path, remote)
        model_paths[role_name] = remote


def remove_staged_models(target: Target, model_paths: dict[str, str]) -> None:
    """Remove the model files staged for the run (best effort: the target may be gone)."""
    if not model_paths:
        return
    try:
        target.exec(["rm", "-rf", posixpath.dirname(next(iter(model_paths.values())))], timeout=60)
    except XSchedOpsError:
        pass
