"""The registry of checks and the runner that keeps one crashing check from stopping the others."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass

from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.findings import Finding

CheckFunction = Callable[[DoctorContext], list[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    area: str
    title: str
    function: CheckFunction


CHECKS: list[Check] = []


def check(check_id: str, area: str, title: str) -> Callable[[CheckFunction], CheckFunction]:
    def register(function: CheckFunction) -> CheckFunction:
        CHECKS.append(Check(check_id, area, title, function))
        return function

    return register


def run_checks(context: DoctorContext, only: set[str] | None = None) -> list[Finding]:
    # Importing the modules registers their checks.
    from xsched_ops.doctor import checks_loader, checks_target  # noqa: F401

    findings: list[Finding] = []
    for registered in CHECKS:
        if only is not None and registered.id not in only:
            continue
        try:
            findings.extend(registered.function(context))
        except Exception as err:  # a crashing check becomes a finding; the others still run
            findings.append(Finding(
                id=registered.id, area=registered.area, severity="crash",
                title=f"{registered.title}: the check crashed ({type(err).__name__}: {err})",
                detail="".join(traceback.format_exception(err)[-3:]),
                fix="report this as a bug in xsched-ops, with `xsched-ops doctor --json` output",
            ))
    return findings
