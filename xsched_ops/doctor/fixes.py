"""`doctor --fix`: plan actions from findings, apply what is safe inside the target."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.finding_data import DuplicateData
from xsched_ops.doctor.findings import Finding
from xsched_ops.environment import stored_env
from xsched_ops.xsched.ipc_state import clean_ipc

# Failures that a corrected environment (stored for xsched-ops runs) repairs.
ENVIRONMENT_FIXABLE = {CheckId.SHIM_LOADS, CheckId.DUPLICATES, CheckId.PRELOAD, CheckId.RUNTIME_LIB, CheckId.SETTINGS,
                       CheckId.GROUND_TRUTH}


@dataclass
class Action:
    kind: str  # "store-environment", "remove-ipc", "move-aside"
    description: str
    commands: list[str] = field(default_factory=list)
    needs_lib_changes: bool = False
    applied: bool = False
    skipped_reason: str = ""
    result: str = ""
    restore_command: str = ""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def plan(context: DoctorContext, findings: list[Finding]) -> list[Action]:
    actions: list[Action] = []
    failed_ids = {finding.id for finding in findings if finding.failed}
    built = context.fixed_environment
    if failed_ids & ENVIRONMENT_FIXABLE and built is not None:
        changed = ", ".join(change.name for change in built.changes) or "no variable"
        actions.append(Action("store-environment",
                              f"store the corrected environment ({changed}) at {stored_env.stored_path(context.target)} "
                              "for xsched-ops runs, and print it for your own shells"))
    for finding in findings:
        if finding.id == CheckId.IPC and finding.failed:
            actions.append(Action("remove-ipc", "remove stale XSched IPC state (no xserver runs)",
                                  commands=list(finding.commands)))
        if finding.id == CheckId.DUPLICATES and finding.failed and isinstance(finding.data, DuplicateData) \
                and finding.data.loaded_provider:
            stale = finding.data.loaded_provider
            aside = f"{stale}.xsched-ops-moved-{time.strftime('%Y%m%d%H%M%S')}"
            actions.append(Action("move-aside", f"move the shadowing duplicate {stale} aside",
                                  commands=[f"mv {shlex.quote(stale)} {shlex.quote(aside)}"], needs_lib_changes=True,
                                  restore_command=f"mv {shlex.quote(aside)} {shlex.quote(stale)}"))
    return actions


def apply(context: DoctorContext, actions: list[Action], allow_lib_changes: bool) -> None:
    target = context.target
    for action in actions:
        if action.needs_lib_changes and not allow_lib_changes:
            action.skipped_reason = "changes a library: only with --allow-lib-changes"
            continue
        if action.kind == "store-environment":
            built = context.fixed_environment
            assert built is not None
            install = context.install
            path = stored_env.save(target, built.env, context.configured_environment, {
                "xsched_prefix": install.prefix if install else None,
                "platform": install.platform.name if install else None,
                "route": built.route,
                "changes": [change.__dict__ for change in built.changes],
            })
            action.applied = True
            action.result = f"stored at {path}"
        elif action.kind == "remove-ipc":
            removed = clean_ipc(target)
            action.applied = True
            action.result = "; ".join(removed) or "nothing left to remove"
        elif action.kind == "move-aside":
            source, destination = shlex.split(action.commands[0])[1:3]
            result = target.exec(["mv", source, destination], timeout=60)
            action.applied = result.exit_code == 0
            action.result = (f"moved; restore with `{action.restore_command}`" if action.applied
                             else f"failed: {result.stderr.strip()}")

