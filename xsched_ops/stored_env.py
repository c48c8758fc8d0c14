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

from xsched_ops.errors import TargetPathError
from xsched_ops.target.base import Target

SCHEMA_VERSION = 1
CONTAINER_PATH = "/etc/xsched-ops/environment.json"


def stored_path(target: Target) -> str:
    if target.kind == "local":
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return os.path.join(base, "xsched-ops", "environment.json")
    return CONTAINER_PATH


def load(target: Target) -> dict | None:
    path = stored_path(target)
    if not target.exists(path):
        return None
    try:
        document = json.loads(target.read_file(path))
    except (ValueError, TargetPathError):
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
