"""Pieces every command shares: global state, consoles, target options.

Imported by every command module when the command tree is mounted, so it imports nothing heavy
(rich is imported when a console is first asked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

# The same folder as ``xsched_ops.results.store.DEFAULT_RESULTS_DIR`` (tests/test_startup.py checks
# it): repeated here so that mounting the commands does not import the results package.
DEFAULT_RESULTS_DIR = Path("results")


@dataclass
class GlobalState:
    debug: bool = False
    docker_host: str | None = None

    def reset(self) -> None:
        self.debug = False
        self.docker_host = None


STATE = GlobalState()


def stderr_console() -> Console:
    """Messages, progress and tables meant for people go to stderr."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def stdout_console() -> Console:
    """Data (JSON, environment files) goes to stdout."""
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False)


def check_route(route: str | None) -> None:
    """Refuse a ``--route`` that is not one of the environment's routes (before anything runs)."""
    from xsched_ops.environment.route import ROUTES

    if route is not None and route not in ROUTES:
        from xsched_ops.errors import UsageError

        raise UsageError(f"unknown route {route!r}", f"choose {' or '.join(ROUTES)}")
