"""Host side of the workload: where its source is, where it goes in the target, its spec.

The workload itself is the package ``xsched_ops_workload`` in this folder; it runs inside the
target and never imports ``xsched_ops``. Its spec and event format: FORMAT.md beside this file.
"""

from __future__ import annotations

from pathlib import Path

WORKLOAD_PACKAGE = "xsched_ops_workload"
SOURCE_DIR = Path(__file__).resolve().parent / WORKLOAD_PACKAGE
FORMAT_DOC = Path(__file__).resolve().parent / "FORMAT.md"
TARGET_ROOT = "/tmp/xsched-ops"


def workload_version() -> str:
    """The version of the workload, read from its own package without importing it."""
    for line in (SOURCE_DIR / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("WORKLOAD_VERSION"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError(f"{SOURCE_DIR}/__init__.py has no WORKLOAD_VERSION")


def target_folder(root: str = TARGET_ROOT) -> str:
    """Folder in the target that holds the copied package: ``<root>/workload-<version>``."""
    return f"{root}/workload-{workload_version()}"


def launcher_argv(spec_path: str, python: str = "python3", root: str = TARGET_ROOT) -> list[str]:
    """argv that runs the whole workload from its spec inside the target (no shell, no cwd needed)."""
    return [python, f"{target_folder(root)}/{WORKLOAD_PACKAGE}/__main__.py", "run", "--spec", spec_path]
