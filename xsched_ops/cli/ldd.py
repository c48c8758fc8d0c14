"""`xsched-ops ldd`: the loader model's resolution tree, with a reason on every edge.

Unlike ``ldd`` it explains each choice (which search step found each library), lists every
path tried for what was not found, and resolves symbols in the global scope as the loader
will, so that an undefined typeinfo (``_ZTIN6xsched3hip10HipCommandE``) shows before the
program dies of it. Nothing is executed in the target.
"""

from __future__ import annotations

import gc
import json
import os
import posixpath
import sys
from typing import TYPE_CHECKING

import typer

from xsched_ops.cli import common
from xsched_ops.errors import UsageError

if TYPE_CHECKING:  # the loader and rich are imported when the command runs
    from rich.tree import Tree

    from xsched_ops.loader import LoadReport
    from xsched_ops.target.fs import TargetFS

JSON_SCHEMA_VERSION = 1


def _parse_env_overrides(pairs: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--env {pair!r} is not NAME=VALUE", "write e.g. --env LD_LIBRARY_PATH=/opt/lib")
        overrides[name] = value
    return overrides


def _render_tree(report: LoadReport) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    by_path = {obj.path: obj for obj in report.objects}
    children: dict[str, list] = {}
    for edge in report.edges:
        children.setdefault(edge.needed_by, []).append(edge)
    status = "[green]starts[/]" if report.would_start else "[bold red]does not start[/]"
    root = Tree(f"[bold]{escape(report.executable)}[/] ({status})")
    expanded: set[str] = set()

    def add(node: Tree, path: str) -> None:
        expanded.add(path)
        for edge in children.get(path, []):
            if edge.path is None:
                node.add(f"[bold red]{escape(edge.name)}[/] [red]{escape(edge.reason)}[/]")
                continue
            if edge.reused:
                node.add(f"[dim]{escape(edge.name)} => {escape(edge.path)} {escape('[' + edge.reason + ']')}[/]")
                continue
            child = node.add(f"{escape(edge.name)} => [cyan]{escape(edge.path)}[/] [yellow]{escape('[' + edge.reason + ']')}[/]")
            if edge.path in by_path and edge.path not in expanded:
                add(child, edge.path)

    add(root, report.executable)
    return root


def _print_report(report: LoadReport) -> None:
    from rich.markup import escape

    console = common.stdout_console()
    if not console.is_terminal:
        console.width = 100_000  # paths are data: never cut them when piped
    console.print(_render_tree(report))
    for preload in report.failed_preloads:
        console.print(f"[yellow]preload ignored:[/] {escape(preload.warning)}")
        for step in preload.tried:
            console.print(f"    tried {escape(step.path)} ({escape(step.source)}): {escape(step.outcome)}")
    for missing in report.not_found:
        console.print(f"[red]not found:[/] {escape(missing.name)} (needed by {escape(missing.needed_by)}): "
                      f"{escape(missing.message)}")
        for step in missing.tried:
            console.print(f"    tried {escape(step.path)} ({escape(step.source)}): {escape(step.outcome)}")
    for problem in report.version_problems:
        color = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{color}]version {problem.severity}:[/] {escape(problem.message)}")
    for symbol in report.unresolved_symbols:
        version = f"@{symbol.version}" if symbol.version else ""
        console.print(f"[red]undefined symbol ({symbol.when}):[/] {escape(symbol.symbol)}{escape(version)} "
                      f"({escape(symbol.demangled)}) needed by {escape(symbol.needed_by)}")
        if symbol.loaded_provider:
            console.print(f"    loaded provider: {escape(symbol.loaded_provider.path)} "
                          + escape(f"[{symbol.loaded_provider.reason}]"))
        if symbol.expected_provider:
            console.print(f"    defined in: {escape(symbol.expected_provider.path)} "
                          + escape(f"[{symbol.expected_provider.reason}]"))
    for warning in report.warnings:
        console.print(f"[yellow]note:[/] {escape(warning)}")
    if report.fatal_error:
        console.print(f"[bold red]the loader would stop with:[/] {escape(report.fatal_error)}")


def _target_fs_and_env(container: str | None, local: bool) -> tuple[TargetFS, dict[str, str], str, dict]:
    from xsched_ops.target.fs import HostFS

    if container is None:
        return HostFS(), dict(os.environ), os.getcwd(), {"kind": "local", "name": "localhost"}
    from xsched_ops.target.open import open_target

    target = open_target(container, local, common.STATE.docker_host)
    facts = target.facts()
    return target.fs(), target.environment(), "/", {"kind": facts.kind, "name": facts.name, "id": facts.id}


def json_text(document: dict, pretty: bool) -> str:
    """Compact JSON (no spaces, no newlines: two thirds the size of the indented one), or indented."""
    if pretty:
        return json.dumps(document, indent=2)
    return json.dumps(document, separators=(",", ":"))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("ldd")
    def ldd(
        files: list[str] = typer.Argument(..., help="ELF files (paths in the target)."),
        container: str | None = typer.Option(None, "--container", help="Analyse files inside this container."),
        local: bool = typer.Option(False, "--local", help="Analyse files on this host (the default)."),
        env: list[str] = typer.Option([], "--env", help="NAME=VALUE over the target's environment (repeatable)."),
        cwd: str | None = typer.Option(None, "--cwd", help="Working directory for relative search entries."),
        symbols: bool = typer.Option(True, "--symbols/--no-symbols", help="Resolve symbols in the global scope."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (schema version 1) to stdout."),
        pretty: bool = typer.Option(False, "--pretty", help="With --json: indent the JSON (default: compact)."),
    ) -> None:
        """Show which file the loader picks for each needed library, and why."""
        from xsched_ops.loader import analyze_many

        if container and local:
            raise UsageError("--container and --local both given", "choose one target")
        fs, environment, default_cwd, target_facts = _target_fs_and_env(container, local)
        environment.update(_parse_env_overrides(env))
        work_dir = cwd or default_cwd
        paths = [file if file.startswith("/") else posixpath.normpath(posixpath.join(work_dir, file))
                 for file in files]
        # One session for all files: a library found for one program is not searched for again.
        # The collector is paused meanwhile: the reports and the caches are mostly long-lived,
        # acyclic objects, and its passes over them cost ~15 % of a /usr/bin-sized batch.
        collecting = gc.isenabled()
        gc.disable()
        try:
            reports = list(analyze_many(fs, paths, environment, work_dir, check_symbols=symbols))
        finally:
            if collecting:
                gc.enable()
        if as_json:
            document = {"version": JSON_SCHEMA_VERSION, "target": target_facts,
                        "reports": [report.to_dict() for report in reports]}
            sys.stdout.write(json_text(document, pretty) + "\n")
            sys.stdout.flush()
        else:
            for report in reports:
                _print_report(report)
        if any(not report.would_start for report in reports):
            raise typer.Exit(1)
