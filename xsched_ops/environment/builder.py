"""The environment a process needs to run under XSched, built from the target's own environment.

Pure: the inputs are the target's configured environment, the XSched install, the route and the
role's settings; the target's file system is only *looked at* (which folders hold a duplicate of
an XSched library, where the real runtime is). Every value is complete (no ``$VAR`` left for a
shell), and every change carries its reason so the doctor and ``env`` can show it.

Routes:
* ``preload``: the shim in ``LD_PRELOAD`` (what HIP needs: torch links libamdhip64 directly);
* ``libpath``: the XSched lib folder first on ``LD_LIBRARY_PATH`` so the runtime's soname
  (``libcuda.so.1`` / ``libamdhip64.so``) resolves to the shim's softlink.
Either way the lib folder goes first on ``LD_LIBRARY_PATH``, folders holding stale duplicates of
XSched's libraries are dropped, and the HAL is pointed at the *real* runtime.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from xsched_ops.elf.ldcache import read_ld_so_cache
from xsched_ops.environment.loader_vars import split_path_list, split_preload
from xsched_ops.environment.route import Route
from xsched_ops.target.fs import TargetFS
from xsched_ops.xsched import platforms
from xsched_ops.xsched.install import XSchedInstall
from xsched_ops.xsched.settings import POLICIES, SETTINGS, RoleScheduling, effective_scheduler

__all__ = ["BuiltEnvironment", "EnvChange", "Route", "build_environment", "find_real_runtime",
           "is_shim_or_softlink", "shadowing_folders", "shim_lacks_hal_dependency", "xsched_library_names"]


@dataclass(frozen=True)
class EnvChange:
    name: str
    before: str | None
    after: str | None
    reason: str


@dataclass(frozen=True)
class BuiltEnvironment:
    env: dict[str, str]
    changes: list[EnvChange] = field(default_factory=list)
    route: Route = "preload"
    role: str | None = None
    real_runtime: str | None = None

    def xsched_only(self) -> dict[str, str]:
        """The variables that differ from the base environment (what a role adds)."""
        return {change.name: self.env[change.name] for change in self.changes if change.name in self.env}


def xsched_library_names(install: XSchedInstall) -> list[str]:
    platform = install.platform
    return [platform.shim, platform.hal, platforms.common().preempt_lib]


def shadowing_folders(fs: TargetFS, install: XSchedInstall, folders: list[str]) -> dict[str, list[str]]:
    """Folders (other than the install's) that hold a file named like one of XSched's libraries."""
    names = xsched_library_names(install)
    lib_real = fs.realpath(install.lib_dir) if fs.exists(install.lib_dir) else install.lib_dir
    shadows: dict[str, list[str]] = {}
    for folder in folders:
        if not folder.startswith("/"):
            continue
        if fs.exists(folder) and fs.realpath(folder) == lib_real:
            continue
        hits = [name for name in names if fs.exists(posixpath.join(folder, name))]
        if hits:
            shadows[folder] = hits
    return shadows


def is_shim_or_softlink(fs: TargetFS, install: XSchedInstall, path: str) -> bool:
    """Would loading ``path`` load the shim itself (the shim, a softlink to it, any file in the lib folder)?"""
    if not path:
        return False
    shim_real = fs.realpath(install.shim_path)
    candidate_real = fs.realpath(path) if path.startswith("/") else path
    if candidate_real == shim_real:
        return True
    return posixpath.dirname(candidate_real) == fs.realpath(install.lib_dir) and posixpath.basename(path) in (
        install.platform.softlinks + [install.platform.shim]
    )


def shim_lacks_hal_dependency(fs: TargetFS, install: XSchedInstall) -> bool:
    """True when the shim was linked without the HAL (no DT_NEEDED on it) while the HAL exists."""
    from xsched_ops.elf.reader import read_elf

    if not (fs.isfile(install.shim_path) and fs.isfile(install.hal_path)):
        return False
    try:
        shim = read_elf(fs, install.shim_path)
    except Exception:  # an unreadable shim is the doctor's finding, not the builder's
        return False
    return install.platform.hal not in shim.needed


def find_real_runtime(fs: TargetFS, install: XSchedInstall, environment: Mapping[str, str]) -> str | None:
    """The real driver/runtime library in the target (never the shim or its softlink).

    Looked for in order: the override variable's current value, the platform's search folders,
    the system folders, then ld.so.cache."""
    platform = install.platform
    candidates: list[str] = []
    current = environment.get(platform.runtime_lib_env, "")
    if current:
        candidates.append(current)
    folders = list(platform.runtime_search_dirs) + list(platforms.SYSTEM_LIB_DIRS)
    for folder in folders:
        for name in platform.runtime_libs:
            candidates.append(posixpath.join(folder, name))
    # Then what ldconfig registered (a driver installed in a folder of ld.so.conf).
    try:
        cache_entries = read_ld_so_cache(fs).entries
    except Exception:  # an unreadable cache only means one source fewer
        cache_entries = ()
    for name in platform.runtime_libs:
        candidates.extend(entry.path for entry in cache_entries if entry.name == name)
    for candidate in candidates:
        if candidate.startswith("/") and fs.isfile(candidate) and not is_shim_or_softlink(fs, install, candidate):
            return candidate
    return None


def build_environment(
    base: Mapping[str, str],
    install: XSchedInstall,
    fs: TargetFS,
    route: Route | None = None,
    role: str | None = None,
    scheduling: RoleScheduling | None = None,
) -> BuiltEnvironment:
    route = route or install.platform.default_route
    env = dict(base)
    changes: list[EnvChange] = []

    def put(name: str, value: str | None, reason: str) -> None:
        before = env.get(name)
        if value is None:
            if name in env:
                del env[name]
                changes.append(EnvChange(name, before, None, reason))
            return
        if before != value:
            env[name] = value
            changes.append(EnvChange(name, before, value, reason))

    # LD_LIBRARY_PATH: the install's lib folder first; no stale duplicates; no empty entries.
    old_entries = split_path_list(base.get("LD_LIBRARY_PATH", ""))
    shadows = shadowing_folders(fs, install, old_entries)
    kept: list[str] = [install.lib_dir]
    dropped_reasons: list[str] = []
    for entry in old_entries:
        if entry in kept:
            continue
        if entry == "":
            dropped_reasons.append("an empty entry (it means the working directory)")
            continue
        if entry in shadows:
            dropped_reasons.append(f"{entry} (holds a stale {', '.join(shadows[entry])})")
            continue
        kept.append(entry)
    reason = f"{install.lib_dir} first so that XSched's own libraries are loaded"
    if dropped_reasons:
        reason += "; dropped " + "; ".join(dropped_reasons)
    put("LD_LIBRARY_PATH", ":".join(kept), reason)

    # LD_PRELOAD: the shim for the preload route; entries that cannot load are dropped (the loader
    # would only warn and run without them).
    preloads = split_preload(base.get("LD_PRELOAD", ""))
    shim_name = install.platform.shim
    new_preloads: list[str] = []
    preload_notes: list[str] = []
    for entry in preloads:
        if posixpath.basename(entry) == shim_name or "libshim" in posixpath.basename(entry):
            if entry != install.shim_path:
                preload_notes.append(f"replaced {entry}")
            continue
        if entry.startswith("/") and not fs.isfile(entry):
            preload_notes.append(f"dropped {entry} (missing: the loader would ignore it)")
            continue
        new_preloads.append(entry)
    if route == "preload":
        new_preloads.insert(0, install.shim_path)
        reason = f"{shim_name} preloaded so that XSched intercepts the runtime"
        if shim_lacks_hal_dependency(fs, install):
            new_preloads.insert(0, install.hal_path)
            reason += (f"; {install.platform.hal} preloaded too: the shim has no DT_NEEDED on it (underlinked), "
                       "so nothing else would put the HAL's symbols in the global scope")
    else:
        reason = f"route libpath: the shim is reached through {install.platform.softlinks[-1]} on LD_LIBRARY_PATH"
    if preload_notes:
        reason += "; " + "; ".join(preload_notes)
    put("LD_PRELOAD", " ".join(new_preloads) if new_preloads else None, reason)

    # The HAL must find the real runtime, not the shim (it would call itself).
    runtime_variable = install.platform.runtime_lib_env
    real_runtime = find_real_runtime(fs, install, base)
    current = base.get(runtime_variable)
    if current and is_shim_or_softlink(fs, install, current):
        put(runtime_variable, real_runtime,
            f"{current} is the shim (or its softlink): the shim would call itself; "
            + (f"pointed at the real runtime {real_runtime}" if real_runtime else "no real runtime found"))
    elif real_runtime and current != real_runtime:
        put(runtime_variable, real_runtime, "the real runtime, so the HAL never resolves the shim's softlink")

    # XSCHED_POLICY makes the scheduler local; a value that is no policy (the old scripts' GBL)
    # always goes, a real policy goes when the role asks for the global scheduler.
    policy = env.get("XSCHED_POLICY")
    if policy is not None and policy not in POLICIES:
        put("XSCHED_POLICY", None, f"{policy!r} is not a policy name (old scripts wrote GBL); "
                                   "XSCHED_POLICY would make the scheduler local")
    elif policy is not None and scheduling is not None and scheduling.scheduler == "GLB":
        put("XSCHED_POLICY", None,
            "XSCHED_POLICY makes the scheduler local: priorities would not apply across processes")
    # XSched does not refuse bad settings; it runs the process unscheduled (XSCHED-FACTS.md
    # section 1). Such a value goes: without it XSched uses its default.
    scheduler = env.get("XSCHED_SCHEDULER")
    if scheduler is not None and scheduler != "GLB" and effective_scheduler(env).kind == "app":
        put("XSCHED_SCHEDULER", None, f"XSCHED_SCHEDULER={scheduler} without a valid XSCHED_POLICY falls through to "
                                      "the app-managed scheduler: nothing would be scheduled")
    for name, spec in SETTINGS.items():
        value = env.get(name)
        if name.startswith("XSCHED_AUTO_XQUEUE_") and value is not None and spec.problem(value):
            put(name, None, f"{name}: {spec.problem(value)}; XSched would only warn and run unscheduled")
    if scheduling is not None:
        for name, value in scheduling.as_environment().items():
            put(name, value, f"role {role or '?'}: XSched setting")
    return BuiltEnvironment(env=env, changes=changes, route=route, role=role, real_runtime=real_runtime)
