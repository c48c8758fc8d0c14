"""The registry of checks and the runner that keeps one crashing check from stopping the others.

Each check registers under one id and names the other ids its findings may carry (``emits``); the
runner holds every check to that contract (a finding under an undeclared id is a crash of its check),
so registered and emitted ids agree.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.findings import Finding
from xsched_ops.errors import ContainerNotFoundError, ContainerNotRunningError, EngineUnavailableError

CheckFunction = Callable[[DoctorContext], list[Finding]]


@dataclass(frozen=True)
class Check:
    id: CheckId
    area: str
    title: str
    function: CheckFunction
    emits: tuple[CheckId, ...] = ()  # the ids besides its own that its findings may carry

    @property
    def finding_ids(self) -> tuple[CheckId, ...]:
        return (self.id, *self.emits)


CHECKS: list[Check] = []


def check(check_id: CheckId, area: str, title: str,
          emits: Iterable[CheckId] = ()) -> Callable[[CheckFunction], CheckFunction]:
    def register(function: CheckFunction) -> CheckFunction:
        CHECKS.append(Check(check_id, area, title, function, tuple(emits)))
        return function

    return register


def registered_checks() -> list[Check]:
    """Every check, in the order they run (importing their modules registers them)."""
    from xsched_ops.doctor import checks_loader, checks_target, checks_xsched  # noqa: F401

    return list(CHECKS)


def _crash(registered: Check, title: str, detail: str) -> Finding:
    return Finding(id=registered.id, area=registered.area, severity="crash", title=f"{registered.title}: {title}",
                   detail=detail, fix="report this as a bug in xsched-ops, with `xsched-ops doctor --json` output")


def run_checks(context: DoctorContext, only: set[str] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for registered in registered_checks():
        if only is not None and registered.id not in only:
            continue
        try:
            produced = registered.function(context)
        except (ContainerNotFoundError, ContainerNotRunningError, EngineUnavailableError):
            raise  # the target went away under the check: no verdict on it (exit 10-12), not a crash
        except Exception as err:  # a crashing check becomes a finding; the others still run
            findings.append(_crash(registered, f"the check crashed ({type(err).__name__}: {err})",
                                   "".join(traceback.format_exception(err)[-3:])))
            continue
        undeclared = sorted({str(finding.id) for finding in produced} - set(registered.finding_ids))
        if undeclared:
            findings.append(_crash(registered, f"the check emitted undeclared ids: {', '.join(undeclared)}",
                                   f"declared: {', '.join(registered.finding_ids)}"))
        findings.extend(produced)
    return findings
