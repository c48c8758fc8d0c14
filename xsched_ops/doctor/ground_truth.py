"""Ground truth: start the target's real python3 under an environment and see what the loader did."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from xsched_ops.platforms import Platform
from xsched_ops.target.base import Target

MARKER = "XSCHED_OPS_MAPS "
# Loads the libraries named in argv with ctypes (what torch or a CUDA program does with the
# runtime's soname), imports torch when asked (torch is what loads the runtime), then reads its
# own memory map. A library that does not load is reported on stderr; the probe goes on.
_PROBE = """
import ctypes, json, sys
arguments = sys.argv[1:]
for name in arguments:
    if name == "--torch":
        continue
    try:
        ctypes.CDLL(name)
    except OSError as err:
        sys.stderr.write("xsched-ops: loading %s failed: %s\\n" % (name, err))
if "--torch" in arguments:
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


def libraries_for_route(platform: Platform, route: str) -> list[str]:
    """What a process must load for the shim to be mapped: with the libpath route, the runtime's
    soname (``libcuda.so.1`` resolves to the shim's softlink); with the preload route, nothing."""
    return [platform.runtime_libs[0]] if route == "libpath" else []


LOADER_ERROR_MARKERS = ("symbol lookup error", "xsched-ops: loading", "error while loading shared libraries", "cannot be preloaded",
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


def real_load(target: Target, env: Mapping[str, str], import_torch: bool = False, timeout: float = 180,
              load_libraries: Sequence[str] = ()) -> RealLoad:
    """Start python3 under ``env``; it loads ``load_libraries`` (ctypes.CDLL, in order), imports
    torch when asked, and reports every mapped shared object."""
    argv = ["python3", "-c", _PROBE, *load_libraries] + (["--torch"] if import_torch else [])
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
