"""`xsched-ops doctor`: what is wrong with XSched in the target, why, and the exact fix."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table
from rich.text import Text

from xsched_ops.cli import common
from xsched_ops.cli.env import render
from xsched_ops.doctor import DoctorContext, Finding, run_checks
from xsched_ops.doctor.fixes import apply, plan
from xsched_ops.doctor.summary import summarize
from xsched_ops.target.open import open_target

SCHEMA_VERSION = 1
_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red", "crash": "bold magenta"}


def findings_table(findings: list[Finding], title: str) -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("area")
    table.add_column("check")
    table.add_column("", no_wrap=True)
    table.add_column("finding")
    areas: list[str] = []
    for finding in findings:
        if finding.area not in areas:
            areas.append(finding.area)
    for area in areas:
        for finding in (f for f in findings if f.area == area):
            body = Text(finding.title)
            if finding.detail and finding.severity not in ("ok",):
                body.append("\n" + finding.detail, style="dim")
            if finding.fix and finding.severity in ("warn", "fail", "crash"):
                body.append("\nfix: " + finding.fix, style="cyan")
            for command in finding.commands:
                body.append("\n  $ " + command, style="cyan")
            table.add_row(area, finding.id, Text(finding.severity, style=_STYLE[finding.severity]), body)
    return table


def _document(context: DoctorContext, findings: list[Finding], strict: bool) -> dict[str, object]:
    install = context.install
    return {
        "version": SCHEMA_VERSION,
        "target": asdict(context.target.facts()),
        "xsched": install.as_dict() if install else None,
        "environment_source": context.environment_source,
        "findings": [finding.model_dump() for finding in findings],
        "summary": summarize(findings, strict),
    }


def doctor(
    container: str | None = typer.Option(None, "--container", "-c", help="Container name or id."),
    local: bool = typer.Option(False, "--local", help="Check this host instead of a container."),
    xsched_prefix: str | None = typer.Option(None, "--xsched-prefix", help="XSched install prefix (holds lib/, bin/)."),
    platform: str | None = typer.Option(None, "--platform", help="Force the platform (hip, cuda)."),
    route: str | None = typer.Option(None, "--route", help="Route of the fix: preload or libpath."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON to stdout."),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail too."),
    fix: bool = typer.Option(False, "--fix", help="Apply the safe fixes, then check again."),
    allow_lib_changes: bool = typer.Option(False, "--allow-lib-changes",
                                           help="With --fix: move shadowing stale libraries aside."),
    no_torch: bool = typer.Option(False, "--no-torch", help="Skip the torch probe (it can take a while)."),
    ignore_stored: bool = typer.Option(False, "--ignore-stored",
                                       help="Check the target's configured environment, not the one stored by --fix."),
) -> None:
    """Check the XSched install, the loader setup, the GPU and the scheduler daemon in the target."""
    console = common.stderr_console()
    with open_target(container, local, common.STATE.docker_host) as target:
        def new_context() -> DoctorContext:
            return DoctorContext(target=target, xsched_prefix=xsched_prefix, platform_name=platform, route=route,
                                 probe_torch=not no_torch, use_stored_environment=not ignore_stored)

        context = new_context()
        findings = run_checks(context)
        document = _document(context, findings, strict)
        if fix:
            actions = plan(context, findings)
            if not as_json:
                console.print(findings_table(findings, f"before --fix ({context.environment_source})"))
                console.print("[bold]actions:[/]" if actions else "[bold]nothing to fix automatically[/]")
                for action in actions:
                    console.print(f"  - {action.description}")
            apply(context, actions, allow_lib_changes)
            after_context = new_context()
            after = run_checks(after_context)
            document = _document(after_context, after, strict)
            document["fix"] = {
                "before": {"findings": [f.model_dump() for f in findings], "summary": summarize(findings, strict)},
                "actions": [action.as_dict() for action in actions],
            }
            if not as_json:
                for action in actions:
                    state = action.result if action.applied else f"skipped: {action.skipped_reason}"
                    console.print(f"  {'✓' if action.applied else '·'} {action.kind}: {state}")
                if context.fixed_environment is not None and any(a.kind == "store-environment" and a.applied
                                                                  for a in actions):
                    console.print("[bold]for your own shells in the target:[/]")
                    console.print(render(context.fixed_environment, "sh", container, full=False),
                                  highlight=False, markup=False)
            findings, context = after, after_context
        summary = summarize(findings, strict)
        if as_json:
            print(json.dumps(document, indent=2, default=str))
        else:
            title = f"xsched-ops doctor: {context.target.name} ({context.environment_source})"
            console.print(findings_table(findings, title))
            style = "bold red" if summary["exit_code"] else "bold green"
            console.print(Text(str(summary["line"]), style=style))
    raise typer.Exit(int(summary["exit_code"]))


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
