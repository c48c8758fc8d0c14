"""Summaries of findings: per check pass/fail, counts, the exit decision."""

from __future__ import annotations

from collections import OrderedDict

from xsched_ops.doctor.findings import Finding


def check_verdicts(findings: list[Finding]) -> OrderedDict[str, str]:
    """Worst severity per check id, in first-seen order."""
    order = {"ok": 0, "info": 0, "warn": 1, "fail": 2, "crash": 3}
    verdicts: OrderedDict[str, str] = OrderedDict()
    for finding in findings:
        current = verdicts.get(finding.id)
        if current is None or order[finding.severity] > order[current]:
            verdicts[finding.id] = finding.severity
    return verdicts


def summarize(findings: list[Finding], strict: bool = False) -> dict[str, object]:
    verdicts = check_verdicts(findings)
    failing = [check for check, severity in verdicts.items() if severity in ("fail", "crash")]
    warning = [check for check, severity in verdicts.items() if severity == "warn"]
    passed = len(verdicts) - len(failing) - (len(warning) if strict else 0)
    return {
        "checks": len(verdicts), "passed": passed, "failed": failing, "warnings": warning,
        "line": f"{passed}/{len(verdicts)} checks passed"
                + (f"; failing: {', '.join(failing)}" if failing else "")
                + (f"; warnings: {', '.join(warning)}" if warning else ""),
        "exit_code": 1 if failing or (strict and warning) else 0,
    }
