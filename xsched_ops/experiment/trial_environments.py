"""The environments of one trial: the launcher's, each role's, and what each role's spec adds.

The environment of a role is ``environment.roles``'s; this module puts a trial's together (the
run's mark, the MPS variables), writes them beside the trial's records, and says which runtime
entry point the workload calls first under XSched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from xsched_ops.environment.base import BaseEnvironment
from xsched_ops.environment.roles import (
    RUN_MARK_VARIABLE,
    RoleEnvironment,
    native_environment,
    spec_role_env,
    xsched_role_environment,
)
from xsched_ops.experiment.modes import ModePlan
from xsched_ops.profiles import Profile
from xsched_ops.target.base import Target
from xsched_ops.xsched.install import XSchedInstall


@dataclass
class TrialEnvironments:
    launcher: dict[str, str]
    roles: dict[str, RoleEnvironment]
    spec_env: dict[str, dict[str, str]]
    notes: list[str]


def trial_environments(base: BaseEnvironment, install: XSchedInstall | None, target: Target, profile: Profile,
                       plan: ModePlan, mark: str, route: str | None, repair_env: bool,
                       extra: dict[str, str] | None = None) -> TrialEnvironments:
    """The launcher's and each role's environment; ``extra`` (the MPS variables) goes to all of them."""
    extra = extra or {}
    native = {**native_environment(base.env, install), **extra}
    launcher = {**native, RUN_MARK_VARIABLE: mark}
    roles: dict[str, RoleEnvironment] = {}
    notes: list[str] = []
    for role in plan.roles:
        if plan.uses_xsched:
            assert install is not None
            roles[role] = xsched_role_environment(base, install, target.fs(), profile, role, route, repair_env)
            roles[role].env.update(extra)
        else:
            roles[role] = RoleEnvironment(role, dict(native), "native")
    spec_env: dict[str, dict[str, str]] = {}
    for role, environment in roles.items():
        added, cannot_remove = spec_role_env(launcher, {**environment.env, RUN_MARK_VARIABLE: mark})
        spec_env[role] = added
        if cannot_remove:
            notes.append(f"role {role}: its environment lacks {', '.join(cannot_remove)} but inherits them "
                         "from the launcher")
    return TrialEnvironments(launcher, roles, spec_env, notes)


def write_environments(trial_dir: Path, environments: TrialEnvironments) -> None:
    """``environment-<launcher|role>.json`` in the trial's folder: each environment and how it was made."""
    documents = {"launcher": {"method": "native", "env": environments.launcher}}
    for role, environment in environments.roles.items():
        documents[role] = {"method": environment.method, "env": environment.env,
                           "added_to_launcher_env": environments.spec_env.get(role, {}),
                           "notes": environment.notes}
    for name, document in documents.items():
        (trial_dir / f"environment-{name}.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n",
                                                             encoding="utf-8")


def role_runtime(plan: ModePlan, install: XSchedInstall | None, route: str | None) -> dict | None:
    """The runtime entry point each XSched role calls first, as an application starts its runtime.

    Route libpath: from the runtime loaded by its application name (the only way the shim gets
    in); route preload: as the process has it (the preloaded shim's). Either way the shim's HAL
    then looks for the real runtime, so a HAL pointed at the shim shows in the run.
    """
    if not plan.uses_xsched or install is None:
        return None
    platform = install.platform
    library = platform.application_soname if route == "libpath" else None
    return {"library": library, "init_symbol": platform.init_symbol,
            "file_prefix": platform.application_soname.split(".so")[0] + ".so"}
