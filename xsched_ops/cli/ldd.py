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
    from rich.console import Console

    from xsched_ops.cli.render import TreeNode
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


def report_tree(report: LoadReport) -> TreeNode:
    """The resolution tree: one node per DT_NEEDED edge, with the file the loader picks and why."""
    from rich.text import Text

    from xsched_ops.cli.render import TreeNode

    by_path = {obj.path: obj for obj in report.objects}
    children: dict[str, list] = {}
    for edge in report.edges:
        children.setdefault(edge.needed_by, []).append(edge)
    status = ("starts", "green") if report.would_start else ("does not start", "bold red")
    root = TreeNode(Text.assemble((report.executable, "bold"), " (", status, ")"))
    expanded: set[str] = set()

    def add(node: TreeNode, path: str) -> None:
        expanded.add(path)
        for edge in children.get(path, []):
            if edge.path is None:
                node.add(Text.assemble((edge.name, "bold red"), " ", (edge.reason, "red")))
                continue
            if edge.reused:
                node.add(Text(f"{edge.name} => {edge.path} [{edge.reason}]", style="dim"))
                continue
            child = node.add(Text.assemble(edge.name, " => ", (edge.path, "cyan"), " ", (f"[{edge.reason}]", "yellow")))
            if edge.path in by_path and edge.path not in expanded:
                add(child, edge.path)

    add(root, report.executable)
    return root


def print_report(console: Console, report: LoadReport) -> None:
    """The tree, then what failed and why. In a terminal long lines wrap between words (a path or symbol
    is never broken nor cropped); in a pipe each item stays one line, for grep."""
    from rich.text import Text

    from xsched_ops.cli.render import UNLIMITED, print_lines, tree_lines, wrap_text

    width = console.width if console.is_terminal else UNLIMITED

    def say(*parts: str | tuple[str, str], indent: str = "") -> None:
        print_lines(console, wrap_text(Text.assemble(*parts), width, indent, indent + "    "))

    print_lines(console, tree_lines(report_tree(report), width))
    for preload in report.failed_preloads:
        say(("preload ignored:", "yellow"), f" {preload.warning}")
        for step in preload.tried:
            say(f"tried {step.path} ({step.source}): {step.outcome}", indent="    ")
    for missing in report.not_found:
        refused = bool(missing.tried) and missing.tried[-1].outcome.startswith(("error: ", "killed: "))
        label = "not loaded:" if refused else "not found:"  # a damaged file was found, and refused
        say((label, "red"), f" {missing.name} (needed by {missing.needed_by}): {missing.message}")
        for step in missing.tried:
            say(f"tried {step.path} ({step.source}): {step.outcome}", indent="    ")
    for problem in report.version_problems:
        say((f"version {problem.severity}:", "red" if problem.severity == "error" else "yellow"), f" {problem.message}")
    for symbol in report.unresolved_symbols:
        version = f"@{symbol.version}" if symbol.version else ""
        say((f"undefined symbol ({symbol.when}):", "red"),
            f" {symbol.symbol}{version} ({symbol.demangled}) needed by {symbol.needed_by}")
        if symbol.loaded_provider:
            say(f"loaded provider: {symbol.loaded_provider.path} [{symbol.loaded_provider.reason}]", indent="    ")
        if symbol.expected_provider:
            say(f"defined in: {symbol.expected_provider.path} [{symbol.expected_provider.reason}]", indent="    ")
    for warning in report.warnings:
        say(("note:", "yellow"), f" {warning}")
    if report.fatal_error:
        say(("the loader would stop with:", "bold red"), f" {report.fatal_error}")


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
        files: list[str] = typer.Argument(..., metavar="FILE...", help="ELF files (paths in the target)."),
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
            console = common.stdout_console()
            for report in reports:
                print_report(console, report)
        failed = [report for report in reports if not report.would_start]
        if failed:  # exit 1, and one line on stderr saying why (stdout may be a file or JSON)
            why = f": {' '.join(failed[0].fatal_error.split())}" if failed[0].fatal_error else ""
            more = f" (and {len(failed) - 1} more of {len(reports)})" if len(failed) > 1 else ""
            sys.stderr.write(f"xsched-ops: {failed[0].executable} would not start{more}{why}\n")
            raise typer.Exit(1)
