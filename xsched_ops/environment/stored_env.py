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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _is_string_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


@dataclass(frozen=True)
class StoredEnvironment:
    """The document ``doctor --fix`` stores: the environment runs start from, and what it was made from."""

    env: Mapping[str, str]
    based_on: Mapping[str, str] = field(default_factory=dict)  # the target's configured environment then
    created: str | None = None
    # The rest of the document as ``save`` got it (xsched_prefix, platform, route, changes).
    details: Mapping[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    @classmethod
    def from_document(cls, document: object) -> StoredEnvironment | None:
        """The model of a parsed document; None when it is not one of this schema version."""
        if not isinstance(document, dict) or document.get("version") != SCHEMA_VERSION:
            return None
        env, based_on = document.get("env"), document.get("based_on", {})
        if not _is_string_map(env) or not _is_string_map(based_on):
            return None
        created = document.get("created")
        details = {key: value for key, value in document.items()
                   if key not in ("version", "env", "based_on", "created")}
        return cls(env=dict(env), based_on=dict(based_on), created=created if isinstance(created, str) else None,
                   details=details)

    def to_document(self) -> dict[str, Any]:
        return {"version": self.version, "created": self.created, "env": dict(self.env),
                "based_on": dict(self.based_on), **self.details}


def load(target: Target, fs: TargetFS | None = None) -> StoredEnvironment | None:
    """The stored environment, or None when there is none (or it is unreadable or stale).

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
    return StoredEnvironment.from_document(document)


def save(target: Target, env: dict[str, str], based_on: dict[str, str], details: dict[str, object]) -> str:
    path = stored_path(target)
    document = StoredEnvironment(env=env, based_on=based_on, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 details=details).to_document()
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
