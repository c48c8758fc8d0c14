"""Finding the XSched install in a target, and what it holds.

Order: the explicit ``--xsched-prefix``; paths in the target's environment (LD_PRELOAD entries
naming a shim, LD_LIBRARY_PATH folders holding libpreempt.so); the seed's prefix; common
prefixes; a bounded search for ``lib/libpreempt.so``.
"""

from __future__ import annotations

import posixpath
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from xsched_ops.environment.loader_vars import split_path_list, split_preload
from xsched_ops.errors import XSchedNotFoundError
from xsched_ops.target.fs import TargetFS
from xsched_ops.xsched import platforms
from xsched_ops.xsched.platforms import Platform

SEARCH_ROOTS = ("/data", "/opt", "/usr/local", "/root", "/home", "/workspace", "/workspaces", "/srv", "/mnt")
SEARCH_MAX_DEPTH = 6
SEARCH_MAX_ENTRIES = 20000
_SKIP_DIRS = {"proc", "sys", "dev", "node_modules", ".git", "__pycache__", "site-packages", "dist-packages"}


@dataclass(frozen=True)
class XSchedInstall:
    prefix: str
    platform: Platform
    version: str | None
    found_by: str

    @property
    def lib_dir(self) -> str:
        return posixpath.join(self.prefix, "lib")

    @property
    def shim_path(self) -> str:
        return posixpath.join(self.lib_dir, self.platform.shim)

    @property
    def hal_path(self) -> str:
        return posixpath.join(self.lib_dir, self.platform.hal)

    @property
    def preempt_path(self) -> str:
        return posixpath.join(self.lib_dir, platforms.common().preempt_lib)

    @property
    def xserver_path(self) -> str:
        return posixpath.join(self.prefix, platforms.common().xserver)

    @property
    def softlink_paths(self) -> list[str]:
        return [posixpath.join(self.lib_dir, name) for name in self.platform.softlinks]

    @property
    def version_file(self) -> str:
        return posixpath.join(self.prefix, platforms.common().version_file)

    def as_dict(self) -> dict[str, object]:
        return {
            "prefix": self.prefix, "platform": self.platform.name, "version": self.version,
            "found_by": self.found_by, "lib_dir": self.lib_dir, "shim": self.shim_path,
            "hal": self.hal_path, "preempt": self.preempt_path, "xserver": self.xserver_path,
        }


def read_version(fs: TargetFS, prefix: str) -> str | None:
    path = posixpath.join(prefix, platforms.common().version_file)
    try:
        with fs.open(path) as handle:
            text = handle.read(65536).decode("utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r'set\s*\(\s*PACKAGE_VERSION\s+"?([0-9][0-9A-Za-z.\-+]*)"?', text)
    return match.group(1) if match else None


def detect_platform(fs: TargetFS, prefix: str) -> Platform | None:
    """The platform whose shim the install has (the first in table order)."""
    lib_dir = posixpath.join(prefix, "lib")
    for platform in platforms.all_platforms():
        if fs.exists(posixpath.join(lib_dir, platform.shim)):
            return platform
    return None


def _looks_like_install(fs: TargetFS, prefix: str) -> bool:
    lib_dir = posixpath.join(prefix, "lib")
    if fs.exists(posixpath.join(lib_dir, platforms.common().preempt_lib)):
        return True
    return any(fs.exists(posixpath.join(lib_dir, p.shim)) for p in platforms.all_platforms())


def _prefixes_from_environment(environment: Mapping[str, str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    shim_names = {p.shim for p in platforms.all_platforms()}
    for entry in split_preload(environment.get("LD_PRELOAD", "")):
        if posixpath.basename(entry) in shim_names and entry.startswith("/"):
            found.append((posixpath.dirname(posixpath.dirname(entry)), "LD_PRELOAD"))
    for entry in split_path_list(environment.get("LD_LIBRARY_PATH", "")):
        if entry.startswith("/") and posixpath.basename(entry.rstrip("/")) == "lib":
            found.append((posixpath.dirname(entry.rstrip("/")), "LD_LIBRARY_PATH"))
    return found


def _bounded_search(fs: TargetFS) -> list[str]:
    """Prefixes holding lib/libpreempt.so below the usual roots, breadth first, bounded."""
    preempt = platforms.common().preempt_lib
    found: list[str] = []
    budget = SEARCH_MAX_ENTRIES
    queue: list[tuple[str, int]] = [(root, 0) for root in SEARCH_ROOTS if fs.isdir(root)]
    while queue and budget > 0:
        folder, depth = queue.pop(0)
        try:
            names = fs.listdir(folder)
        except OSError:
            continue
        budget -= len(names)
        if "lib" in names and fs.isfile(posixpath.join(folder, "lib", preempt)):
            found.append(folder)
        if depth >= SEARCH_MAX_DEPTH:
            continue
        for name in names:
            if name in _SKIP_DIRS or name.startswith("."):
                continue
            child = posixpath.join(folder, name)
            # Symbolic links are not followed: a loop must not eat the budget.
            try:
                if not stat.S_ISDIR(fs.lstat(child).st_mode):
                    continue
            except OSError:
                continue
            queue.append((child, depth + 1))
    return found


def candidate_prefixes(fs: TargetFS, environment: Mapping[str, str]) -> list[tuple[str, str]]:
    layout = platforms.common()
    candidates = _prefixes_from_environment(environment)
    candidates.append((layout.seed_prefix, "the seed's install path"))
    candidates.extend((prefix, "common prefix") for prefix in layout.common_prefixes)
    return candidates


def discover(
    fs: TargetFS,
    environment: Mapping[str, str],
    explicit_prefix: str | None = None,
    platform_name: str | None = None,
) -> XSchedInstall:
    forced = platforms.get(platform_name) if platform_name else None

    def make(prefix: str, found_by: str) -> XSchedInstall | None:
        platform = forced or detect_platform(fs, prefix)
        if platform is None:
            return None
        return XSchedInstall(prefix=prefix, platform=platform, version=read_version(fs, prefix), found_by=found_by)

    if explicit_prefix:
        prefix = posixpath.normpath(explicit_prefix)
        if prefix.endswith("/lib"):
            prefix = posixpath.dirname(prefix)
        install = make(prefix, "--xsched-prefix") if _looks_like_install(fs, prefix) else None
        if install is None:
            raise XSchedNotFoundError(
                f"no XSched install at {prefix} (no lib/libpreempt.so or shim library there)",
                "give the folder that holds lib/ and bin/ of the XSched build (its CMAKE_INSTALL_PREFIX)",
            )
        return install
    seen: set[str] = set()
    for prefix, found_by in candidate_prefixes(fs, environment):
        prefix = posixpath.normpath(prefix)
        if prefix in seen:
            continue
        seen.add(prefix)
        if _looks_like_install(fs, prefix):
            install = make(prefix, found_by)
            if install is not None:
                return install
    for prefix in _bounded_search(fs):
        if prefix not in seen:
            install = make(prefix, "search for lib/libpreempt.so")
            if install is not None:
                return install
    raise XSchedNotFoundError(
        "no XSched install found in the target (looked at the environment, "
        f"{platforms.common().seed_prefix}, common prefixes and a bounded search)",
        "pass --xsched-prefix PATH (the folder holding "
        + " or ".join(f"lib/{p.shim}" for p in platforms.all_platforms()) + ")",
    )
