"""Summaries of findings: per check pass/fail, counts, the exit decision, and the judgment of findings
against what the user is about to run (``--backend``)."""

from __future__ import annotations

from collections import Counter, OrderedDict

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.findings import Finding

# The doctor's exit codes (also in `doctor --help` and the README's doctor section).
EXIT_OK = 0           # nothing fails (warnings allowed, unless --strict)
EXIT_FAILURES = 1     # at least one failure (or a warning with --strict); after --fix: what the fix left
EXIT_CHECK_CRASHED = 3  # nothing failed, but a check crashed: the verdict is incomplete (a bug in xsched-ops)

BACKENDS = ("torch", "sim")
# Failures that do not stop the simulated backend (it needs no GPU): shown, but judged as warnings.
NOT_NEEDED_BY_SIM = {CheckId.GPU}


def judge(findings: list[Finding], backend: str = "torch") -> list[Finding]:
    """The findings as they bear on ``backend``: with ``sim`` a missing GPU is a warning, not a failure
    (the finding stays, with ``data.severity_for_gpu_backends`` = "fail" and ``data.judged_for_backend``)."""
    if backend != "sim":
        return list(findings)
    judged: list[Finding] = []
    for finding in findings:
        if finding.id in NOT_NEEDED_BY_SIM and finding.severity == "fail":
            note = "a warning with --backend sim: the simulated backend needs no GPU"
            finding = finding.model_copy(update={
                "severity": "warn",
                "detail": f"{finding.detail}\n{note}" if finding.detail else note,
                "data": finding.data.model_copy(update={"severity_for_gpu_backends": "fail",
                                                        "judged_for_backend": "sim"}),
            })
        judged.append(finding)
    return judged


def check_verdicts(findings: list[Finding]) -> OrderedDict[str, str]:
    """Worst severity per check id, in first-seen order."""
    order = {"ok": 0, "info": 0, "warn": 1, "fail": 2, "crash": 3}
    verdicts: OrderedDict[str, str] = OrderedDict()
    for finding in findings:
        current = verdicts.get(finding.id)
        if current is None or order[finding.severity] > order[current]:
            verdicts[finding.id] = finding.severity
    return verdicts


def summarize(findings: list[Finding], strict: bool = False, backend: str | None = None) -> dict[str, object]:
    """Counts per check id (a check with several findings counts once, by its worst) and per finding,
    one line, and the exit code: 0 nothing fails, 1 a failure (or a warning with ``strict``), 3 only a
    crashed check (the verdict is incomplete)."""
    verdicts = check_verdicts(findings)
    failing = [check for check, severity in verdicts.items() if severity in ("fail", "crash")]
    crashed = [check for check, severity in verdicts.items() if severity == "crash"]
    warning = [check for check, severity in verdicts.items() if severity == "warn"]
    passed = len(verdicts) - len(failing) - (len(warning) if strict else 0)
    line = f"{passed}/{len(verdicts)} checks passed"
    if warning and not strict:
        line += f" ({len(warning)} with warnings: {', '.join(warning)})"
    if failing:
        line += f"; failing: {', '.join(failing)}"
    if warning and strict:
        line += f"; warnings (failing with --strict): {', '.join(warning)}"
    if crashed:
        line += f"; crashed: {', '.join(crashed)}"
    if backend and backend != "torch":
        line += f" (judged for --backend {backend})"
    really_failing = [check for check in failing if check not in crashed]
    if really_failing or (strict and warning):
        exit_code = EXIT_FAILURES
    elif crashed:
        exit_code = EXIT_CHECK_CRASHED
    else:
        exit_code = EXIT_OK
    counts = Counter(finding.severity for finding in findings)
    summary: dict[str, object] = {
        "checks": len(verdicts), "passed": passed, "failed": failing, "warnings": warning, "crashed": crashed,
        "findings": {severity: counts.get(severity, 0) for severity in ("fail", "crash", "warn", "info", "ok")},
        "line": line,
        "exit_code": exit_code,
    }
    if backend:
        summary["backend"] = backend
    return summary
