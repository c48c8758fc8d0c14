"""Evidence of XSched in a process: the shim mapped in its memory and the XSCHED_* it sees.

Read from /proc, never from a flag: a preload that failed to load leaves no mapping.
"""

from __future__ import annotations

import os
import re

SHIM_FILE_RE = re.compile(r"^libshim[^/]*\.so(\.[0-9.]+)?$")


def mapped_paths(maps_text: str, keep) -> list[str]:
    """Paths of mapped files whose file name ``keep(name)`` accepts, in order of first appearance."""
    found: list[str] = []
    for line in maps_text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        path = parts[5].strip()
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        if keep(os.path.basename(path)) and path not in found:
            found.append(path)
    return found


def shim_paths_from_maps(maps_text: str) -> list[str]:
    """Paths of mapped files whose name matches ``libshim*.so*``, in order of first appearance."""
    return mapped_paths(maps_text, SHIM_FILE_RE.match)


def read_maps(pid: int | str = "self") -> str:
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as handle:
        return handle.read()


def read_environ(pid: int | str) -> dict[str, str]:
    """The environment a process was started with (/proc/PID/environ)."""
    with open(f"/proc/{pid}/environ", "rb") as handle:
        raw = handle.read()
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            key, _, value = item.partition(b"=")
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def xsched_env(environ: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in sorted(environ.items()) if key.startswith("XSCHED_")}


def collect_self() -> dict:
    """The ``xsched`` object of the ``start`` event, for the calling process."""
    try:
        paths = shim_paths_from_maps(read_maps("self"))
        maps_error = None
    except OSError as err:
        paths, maps_error = [], f"cannot read /proc/self/maps: {err.strerror}"
    evidence = {
        "shim_mapped": bool(paths),
        "shim_paths": paths,
        "env": xsched_env(dict(os.environ)),
        "ld_preload": os.environ.get("LD_PRELOAD"),
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH"),
    }
    if maps_error:
        evidence["maps_error"] = maps_error
    return evidence
