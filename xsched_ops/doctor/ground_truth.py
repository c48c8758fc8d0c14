"""Ground truth: start the target's real python3 under an environment and see what the loader did."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from xsched_ops.target.base import Target

MARKER = "XSCHED_OPS_MAPS "
# Reads its own memory map; imports torch too when asked, since torch is what loads the runtime.
_PROBE = """
import json, sys
if sys.argv[1:] == ["torch"]:
    try:
        import torch
    except Exception as err:
        sys.stderr.write("xsched-ops: import torch failed: %s\\n" % err)
paths = set()
for line in open("/proc/self/maps"):
    parts = line.split(None, 5)
    if len(parts) == 6 and ".so" in parts[5]:
        paths.add(parts[5].strip())
print("XSCHED_OPS_MAPS " + json.dumps(sorted(paths)))
"""

LOADER_ERROR_MARKERS = ("symbol lookup error", "error while loading shared libraries", "cannot be preloaded",
                        "version `", "undefined symbol")


@dataclass(frozen=True)
class RealLoad:
    exit_code: int
    started: bool  # python3 ran to the end of the probe
    mapped: list[str] = field(default_factory=list)
    loader_messages: list[str] = field(default_factory=list)
    stderr: str = ""

    def has_mapped(self, file_name: str) -> bool:
        return any(posixpath.basename(path) == file_name for path in self.mapped)

    def mapped_path(self, file_name: str) -> str | None:
        return next((path for path in self.mapped if posixpath.basename(path) == file_name), None)

    def as_dict(self) -> dict[str, object]:
        return {"exit_code": self.exit_code, "started": self.started, "loader_messages": self.loader_messages,
                "mapped": self.mapped}


def real_load(target: Target, env: Mapping[str, str], import_torch: bool = False, timeout: float = 180) -> RealLoad:
    argv = ["python3", "-c", _PROBE] + (["torch"] if import_torch else [])
    result = target.exec(argv, env=dict(env), timeout=timeout)
    mapped: list[str] = []
    started = False
    for line in result.stdout.splitlines():
        if line.startswith(MARKER):
            mapped = json.loads(line.removeprefix(MARKER))
            started = True
    messages = [line.strip() for line in result.stderr.splitlines()
                if any(marker in line for marker in LOADER_ERROR_MARKERS)]
    return RealLoad(exit_code=result.exit_code, started=started, mapped=mapped, loader_messages=messages,
                    stderr=result.stderr[-4000:])
