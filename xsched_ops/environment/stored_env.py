"""The corrected environment that `doctor --fix` stores in the target, and xsched-ops runs use.

A container's configured ``Env`` cannot be changed without recreating it; so the fix is stored
inside the target (``/etc/xsched-ops/environment.json`` in a container, the user's config folder
on this host) and every later xsched-ops command (doctor, env, run) starts from it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from xsched_ops.errors import TargetPathError, XSchedOpsError
from xsched_ops.target.base import Target
from xsched_ops.target.fs import TargetFS

SCHEMA_VERSION = 1
CONTAINER_PATH = "/etc/xsched-ops/environment.json"


def stored_path(target: Target) -> str:
    if target.kind == "local":
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return os.path.join(base, "xsched-ops", "environment.json")
    return CONTAINER_PATH


MAX_BYTES = 1 << 20  # a stored environment is a few KiB


def load(target: Target, fs: TargetFS | None = None) -> dict | None:
    """The stored environment document, or None when there is none (or it is unreadable or stale).

    Read through the target's file system from the host when it can be reached (``fs``, else
    ``target.fs()``): no command runs in the target. Otherwise (a remote engine) through the
    target itself.
    """
    path = stored_path(target)
    if fs is None:
        try:
            fs = target.fs()
        except XSchedOpsError:
            fs = None
    try:
        if fs is not None:
            try:
                with fs.open(path) as stream:
                    raw = stream.read(MAX_BYTES)
            except OSError:  # absent (or not a file): nothing stored
                return None
        else:
            if not target.exists(path):
                return None
            raw = target.read_file(path)
        document = json.loads(raw)
    except (ValueError, TargetPathError):
        return None
    if not isinstance(document, dict):
        return None
    if document.get("version") != SCHEMA_VERSION or not isinstance(document.get("env"), dict):
        return None
    return document


def save(target: Target, env: dict[str, str], based_on: dict[str, str], details: dict[str, object]) -> str:
    path = stored_path(target)
    document = {"version": SCHEMA_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "env": env,
                "based_on": based_on, **details}
    with tempfile.TemporaryDirectory(prefix="xsched-ops-env-") as folder:
        local = Path(folder) / "environment.json"
        local.write_text(json.dumps(document, indent=2, sort_keys=True))
        target.copy_in(local, path)
    return path


def remove(target: Target) -> bool:
    path = stored_path(target)
    if not target.exists(path):
        return False
    target.exec(["rm", "-f", path], timeout=60)
    return True
