"""The environment of every process of a run.

Where a run starts from: the environment stored by ``doctor --fix`` when there is one, else the
target's configured environment. From that base:

- native modes: the base without any ``libshim*`` in ``LD_PRELOAD``, without the XSched lib folder
  on ``LD_LIBRARY_PATH`` (its softlinks would route the runtime to the shim) and without the
  ``XSCHED_*`` scheduling settings;
- mode xsched, base stored by ``doctor --fix`` (or ``--repair-env``): the environment builder's
  computed environment for the role (repairs included);
- mode xsched, the target's configured environment and no ``--repair-env``: the environment *as
  the user configured it* plus only what XSched itself needs (the shim in ``LD_PRELOAD``, or the
  lib folder first on ``LD_LIBRARY_PATH`` for route libpath, and the role's settings). A broken
  setup then shows as an invalid run with the doctor's hint instead of being repaired silently;
  ``doctor --fix`` or ``fix-and-rerun`` store the repair.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from xsched_ops.environment.base import SOURCE_CONFIGURED, SOURCE_STORED, BaseEnvironment, base_environment
from xsched_ops.environment.builder import build_environment
from xsched_ops.environment.loader_vars import split_path_list, split_preload
from xsched_ops.environment.route import with_xsched_reachable
from xsched_ops.profiles import Profile
from xsched_ops.target.base import EXEC_MARKER_VARIABLE
from xsched_ops.target.fs import TargetFS
from xsched_ops.xsched.install import XSchedInstall
from xsched_ops.xsched.settings import SETTINGS, RoleScheduling

# Every process of a run carries this variable (value: the run's mark), so that anything of the run
# still alive in the target can be found and ended, whatever started it.
RUN_MARK_VARIABLE = "XSCHEDOPS_RUN_MARK"  # not XSCHED_*: the workload records those as XSched settings

# Re-exported: where a run's environment starts is environment.base's (one home).
__all__ = ["RUN_MARK_VARIABLE", "SOURCE_CONFIGURED", "SOURCE_STORED", "BaseEnvironment", "RoleEnvironment",
           "as_configured_environment", "base_environment", "native_environment", "role_scheduling",
           "spec_role_env", "xsched_role_environment"]


@dataclass(frozen=True)
class RoleEnvironment:
    """The complete environment of one role process, and how it was made."""

    role: str
    env: dict[str, str]
    method: str  # "native", "computed", "as-configured"
    notes: list[str] = field(default_factory=list)


def _clean(env: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in (EXEC_MARKER_VARIABLE, RUN_MARK_VARIABLE)}


def native_environment(base: Mapping[str, str], install: XSchedInstall | None = None) -> dict[str, str]:
    """The base without XSched: no shim preloaded, no XSched lib folder, no scheduling settings."""
    env = _clean(base)
    preloads = [entry for entry in split_preload(env.get("LD_PRELOAD", ""))
                if not posixpath.basename(entry).startswith("libshim")]
    if install is not None:
        preloads = [entry for entry in preloads if posixpath.dirname(entry) != install.lib_dir]
    if preloads:
        env["LD_PRELOAD"] = " ".join(preloads)
    else:
        env.pop("LD_PRELOAD", None)
    if install is not None and "LD_LIBRARY_PATH" in env:
        kept = [entry for entry in split_path_list(env["LD_LIBRARY_PATH"])
                if entry and posixpath.normpath(entry) != posixpath.normpath(install.lib_dir)]
        if kept:
            env["LD_LIBRARY_PATH"] = ":".join(kept)
        else:
            del env["LD_LIBRARY_PATH"]
    for name in SETTINGS:
        env.pop(name, None)
    return env


def role_scheduling(profile: Profile, role: str) -> RoleScheduling:
    settings = getattr(profile, role).xsched
    return RoleScheduling(scheduler=profile.xsched.scheduler, priority=settings.priority, level=settings.level,
                          threshold=settings.threshold, batch_size=settings.batch_size)


def as_configured_environment(base: Mapping[str, str], install: XSchedInstall, route: str,
                              scheduling: RoleScheduling) -> dict[str, str]:
    """The user's environment plus only what XSched needs: the shim (or its lib folder) and the settings."""
    env = with_xsched_reachable(_clean(base), route, shim_path=install.shim_path, lib_dir=install.lib_dir)
    env.update(scheduling.as_environment())
    return env


def xsched_role_environment(base: BaseEnvironment, install: XSchedInstall, fs: TargetFS, profile: Profile,
                            role: str, route: str | None = None, repair: bool = False) -> RoleEnvironment:
    """A role's environment under XSched (see the module's docstring for which method applies)."""
    scheduling = role_scheduling(profile, role)
    chosen_route = route or install.platform.default_route
    if base.stored or repair:
        built = build_environment(_clean(base.env), install, fs, route=chosen_route,  # type: ignore[arg-type]
                                  role=role, scheduling=scheduling)
        notes = [f"{change.name}: {change.reason}" for change in built.changes]
        return RoleEnvironment(role, dict(built.env), "computed", notes)
    env = as_configured_environment(base.env, install, chosen_route, scheduling)
    return RoleEnvironment(role, env, "as-configured",
                           ["the target's configured environment, not repaired (no environment stored by "
                            "`doctor --fix`; pass --repair-env to compute one for this run)"])


def spec_role_env(launcher_env: Mapping[str, str], role_env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What a role process must add to the launcher's environment; and the variables it cannot remove.

    The launcher starts each role with its own environment plus the role's spec ``env``, so a
    role can add and override but not remove; the launcher's environment is the native one, which
    already lacks what XSched adds.
    """
    added = {key: value for key, value in role_env.items() if launcher_env.get(key) != value}
    cannot_remove = sorted(key for key in launcher_env if key not in role_env and key != RUN_MARK_VARIABLE)
    return added, cannot_remove
