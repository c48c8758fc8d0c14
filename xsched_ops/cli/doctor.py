"""`xsched-ops doctor`: what is wrong with XSched in the target, why, and the exact fix."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import typer

from xsched_ops.cli import common

if TYPE_CHECKING:  # the checks, rich and the Docker SDK are imported when the command runs
    from rich.console import Console, ConsoleOptions, RenderResult

    from xsched_ops.doctor import DoctorContext, Finding

SCHEMA_VERSION = 1
_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red", "crash": "bold magenta"}
_LABEL = {"ok": "ok", "info": "info", "warn": "WARN", "fail": "FAIL", "crash": "CRASH"}
_ORDER = {"crash": 0, "fail": 0, "warn": 1, "info": 2, "ok": 3}
_INDENT = "    "
# What a failing check means, in the report's first line (the finding's title otherwise).
_BROKEN = {
    "shim-loads": "the shim does not load",
    "duplicates": "a stale XSched library shadows the install's",
    "ground-truth": "the loader model and the real loader disagree",
    "ground-truth.fixed": "even the computed environment does not load the shim",
    "gpu": "no usable GPU",
    "install": "the XSched install is incomplete",
    "preload": "LD_PRELOAD does not load the shim",
    "runtime-lib": "XSched's HAL would not open the real runtime",
    "settings": "the XSched settings do not give the scheduler asked for",
    "ipc": "stale XSched IPC state",
    "xserver": "the scheduler daemon is not usable",
    "python-torch": "python3 does not run in the target",
}


def _phrase(finding: Finding) -> str:
    return _BROKEN.get(finding.id) or finding.title


def lead_line(findings: list[Finding], summary: dict[str, object], backend: str | None = None) -> str:
    """The report's first line: what is broken, in words (one phrase per failing check), or that nothing is."""
    failing: dict[str, Finding] = {}
    for finding in findings:
        if finding.failed and finding.id not in failing:
            failing[finding.id] = finding
    warned = list(summary["warnings"])  # type: ignore[call-overload]
    judged = f" for --backend {backend}" if backend else ""
    if failing:
        crashed = [f for f in failing.values() if f.severity == "crash"]
        broken = [f for f in failing.values() if f.severity != "crash"]
        text = "BROKEN" + judged + ": " + "; ".join(_phrase(f) for f in broken) if broken else \
            "INCOMPLETE" + judged + ": no failure found, but"
        if crashed:
            text += ("; " if broken else " ") + "a check crashed (" + ", ".join(f.id for f in crashed) + ")"
        return text
    if warned and summary["exit_code"]:
        return f"BROKEN{judged} (--strict): warnings from " + ", ".join(warned)
    return f"OK{judged}: nothing fails" + (f"; warnings from {', '.join(warned)}" if warned else "")


def finding_lines(finding: Finding, width: int, same_commands_as: str | None = None) -> list[tuple[str, str]]:
    """One block: the title, the detail indented, then the fix and its commands, each command verbatim on a
    line of its own (ready to paste; when an earlier block has the very same commands, a pointer to it).
    Returns (line, style) pairs; prose wraps between words only."""
    from xsched_ops.cli.render import wrap_words

    lines: list[tuple[str, str]] = []
    head = f"{_LABEL[finding.severity]} {finding.id}: {finding.title}"
    lines += [(line, _STYLE[finding.severity]) for line in wrap_words(head, width, "", _INDENT)]
    if finding.detail and finding.severity != "ok":
        lines += [(line, "") for line in wrap_words(finding.detail, width, _INDENT)]
    if finding.fix and finding.severity in ("warn", "fail", "crash"):
        lines += [(line, "cyan") for line in wrap_words("fix: " + finding.fix, width, _INDENT, _INDENT + "  ")]
    if same_commands_as and finding.commands:
        lines += [(line, "cyan") for line in wrap_words(f"(the same commands as {same_commands_as} above)", width,
                                                        _INDENT, _INDENT + "  ")]
    else:
        lines += [(_INDENT + command, "bold") for command in finding.commands]
    return lines


def report_lines(findings: list[Finding], width: int, verbose: bool = False) -> list[tuple[str, str]]:
    """The blocks of the findings that are not ok (with ``verbose``: every finding), failures first."""
    shown = [f for f in findings if verbose or f.severity in ("warn", "fail", "crash")]
    shown.sort(key=lambda f: _ORDER[f.severity])  # stable: the checks' order within a severity
    lines: list[tuple[str, str]] = []
    commands_of: dict[tuple[str, ...], str] = {}
    for finding in shown:
        if verbose and finding.severity in ("ok", "info"):
            lines += finding_lines(finding, width) if finding.severity == "info" and finding.detail else \
                [(line, _STYLE[finding.severity]) for line in
                 _wrap(f"{_LABEL[finding.severity]} {finding.id}: {finding.title}", width)]
            continue
        lines += finding_lines(finding, width, commands_of.get(tuple(finding.commands)))
        commands_of.setdefault(tuple(finding.commands), finding.id)
        lines.append(("", ""))
    return lines


def _wrap(text: str, width: int, indent: str = "", hanging: str | None = _INDENT) -> list[str]:
    from xsched_ops.cli.render import wrap_words

    return wrap_words(text, width, indent, hanging)


def shown_line(findings: list[Finding], verbose: bool) -> str:
    hidden = sum(1 for f in findings if f.severity in ("ok", "info"))
    shown = len(findings) - (0 if verbose else hidden)
    return (f"{shown} finding{'s' if shown != 1 else ''} shown"
            + ("" if verbose or not hidden else f", {hidden} ok or info hidden (--verbose lists them)"))


class FindingsReport:
    """The findings as blocks (a rich renderable): nothing cut or broken at any width."""

    def __init__(self, findings: list[Finding], title: str, verbose: bool = False) -> None:
        self.findings, self.title, self.verbose = findings, title, verbose

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        width = options.max_width
        yield from (Text(line, style="bold", no_wrap=True, overflow="ignore") for line in _wrap(self.title, width))
        for line, style in report_lines(self.findings, width, self.verbose):
            yield Text(line, style=style, no_wrap=True, overflow="ignore")


def findings_table(findings: list[Finding], title: str, verbose: bool = False) -> FindingsReport:
    """The findings that are not ok (every one with ``verbose``) as blocks; kept under its old name for
    fix-and-rerun, which prints the doctor's findings before its fix."""
    return FindingsReport(findings, title, verbose)


def print_report(console: Console, findings: list[Finding], summary: dict[str, object], title: str,
                 verbose: bool, backend: str | None, before_fix: list[Finding] | None = None,
                 fix_lines: list[str] | None = None) -> None:
    """The human report: one line saying what is broken, the title (what was checked), after --fix what
    was broken and what was done, one block per finding, the summary line."""
    from xsched_ops.cli.render import print_lines

    width = console.width
    lead = lead_line(findings, summary, backend)
    print_lines(console, _wrap(lead, width), "bold red" if summary["exit_code"] else "bold green")
    print_lines(console, _wrap(title, width))
    if before_fix is not None:
        before = [f for f in before_fix if f.failed]
        was = "; ".join(dict.fromkeys(_phrase(f) for f in before)) or "nothing failed"
        print_lines(console, _wrap(f"before --fix: {was}", width))
        print_lines(console, fix_lines or [])
    print_lines(console, [""])
    for line, style in report_lines(findings, width, verbose):
        print_lines(console, [line], style)
    if verbose:
        print_lines(console, [""])
    print_lines(console, _wrap(f"{summary['line']}; {shown_line(findings, verbose)}", width),
                "bold red" if summary["exit_code"] else "bold green")


def _document(context: DoctorContext, findings: list[Finding], strict: bool, backend: str) -> dict[str, object]:
    from xsched_ops.doctor.summary import summarize

    install = context.install
    return {
        "version": SCHEMA_VERSION,
        "target": asdict(context.target.facts()),
        "xsched": install.as_dict() if install else None,
        "environment_source": context.environment_source,
        "backend": backend,
        "findings": [finding.model_dump() for finding in findings],
        "summary": summarize(findings, strict, backend),
    }


def doctor(
    container: str | None = typer.Option(None, "--container", "-c", help="Container name or id."),
    local: bool = typer.Option(False, "--local", help="Check this host instead of a container."),
    xsched_prefix: str | None = typer.Option(None, "--xsched-prefix", help="XSched install prefix (holds lib/, bin/)."),
    platform: str | None = typer.Option(None, "--platform", help="Force the platform (hip, cuda)."),
    route: str | None = typer.Option(None, "--route", help="Route of the fix: preload or libpath."),
    backend: str = typer.Option("torch", "--backend",
                                help="What you will run: torch (a real GPU; a missing GPU fails) or sim (the "
                                     "simulated device; a missing GPU is a warning and torch is not probed)."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON to stdout."),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail too."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List the checks that passed too."),
    fix: bool = typer.Option(False, "--fix", help="Apply the safe fixes, then check again."),
    allow_lib_changes: bool = typer.Option(False, "--allow-lib-changes",
                                           help="With --fix: move shadowing stale libraries aside."),
    no_torch: bool = typer.Option(False, "--no-torch", help="Skip the torch probe (it can take a while)."),
    ignore_stored: bool = typer.Option(False, "--ignore-stored",
                                       help="Check the target's configured environment, not the one stored by --fix."),
) -> None:
    """Check the XSched install, the loader setup, the GPU and the scheduler daemon in the target.

    The report goes to stdout, messages to stderr.
    It leads with one line saying what is broken, then one block per finding: title, detail, fix.
    Fix commands are printed whole, each on a line of its own, ready to paste.
    --verbose lists the checks that passed too; --json prints the findings as JSON instead.

    \b
    Exit codes:
    0: nothing fails for the backend you will run (warnings fail only with --strict).
    0 after --fix: the fix worked and nothing else fails.
    1: a failure, or a warning with --strict; after --fix: one the fix did not repair.
    2: bad arguments.
    3: nothing failed, but a check crashed: the verdict is incomplete (report it as a bug).
    10 and up: the target could not be checked, e.g. 10 no Docker engine, 11 no such container (see Errors in the README).
    130: interrupted (Ctrl-C).
    """
    from rich.text import Text

    from xsched_ops.cli.env import render
    from xsched_ops.doctor import DoctorContext, run_checks
    from xsched_ops.doctor.fixes import apply, plan
    from xsched_ops.doctor.summary import BACKENDS, judge, summarize
    from xsched_ops.errors import UsageError
    from xsched_ops.target.open import open_target

    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}", f"choose one of: {', '.join(BACKENDS)}")
    common.check_route(route)
    messages = common.stderr_console()
    with open_target(container, local, common.STATE.docker_host) as target:
        def new_context() -> DoctorContext:
            return DoctorContext(target=target, xsched_prefix=xsched_prefix, platform_name=platform, route=route,
                                 probe_torch=not no_torch and backend != "sim",
                                 use_stored_environment=not ignore_stored)

        context = new_context()
        findings = judge(run_checks(context), backend)
        document = _document(context, findings, strict, backend)
        before_fix: list[Finding] | None = None
        fix_lines: list[str] = []
        if fix:
            actions = plan(context, findings)
            if not as_json:
                messages.print(Text(f"before --fix: {lead_line(findings, summarize(findings, strict), backend)}"))
                messages.print(Text("applying: " + "; ".join(a.description for a in actions) if actions
                                    else "nothing to fix automatically"))
            apply(context, actions, allow_lib_changes)
            after_context = new_context()
            after = judge(run_checks(after_context), backend)
            document = _document(after_context, after, strict, backend)
            document["fix"] = {
                "before": {"findings": [f.model_dump() for f in findings],
                           "summary": summarize(findings, strict, backend)},
                "actions": [action.as_dict() for action in actions],
            }
            for action in actions:
                state = action.result if action.applied else action.skipped_reason or action.result
                fix_lines.append(f"  {'done' if action.applied else 'not done'} {action.kind}: {state}")
            if not actions:
                fix_lines.append("  nothing to fix automatically")
            if context.fixed_environment is not None and any(a.kind == "store-environment" and a.applied
                                                              for a in actions):
                fix_lines.append("for your own shells in the target:")
                fix_lines += ["    " + line for line in
                              render(context.fixed_environment, "sh", container, full=False).splitlines()]
            before_fix = findings
            findings, context = after, after_context
        summary = summarize(findings, strict, backend)
        if as_json:
            print(json.dumps(document, indent=2, default=str))
        else:
            title = f"checked: {context.target.name}, with {context.environment_source}"
            print_report(common.stdout_console(), findings, summary, title, verbose, backend if backend != "torch"
                         else None, before_fix, fix_lines)
    raise typer.Exit(int(summary["exit_code"]))  # type: ignore[call-overload]


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
