"""Pieces every command shares: global state, consoles, target options."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console


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
    return Console(stderr=True, soft_wrap=True)


def stdout_console() -> Console:
    """Data (JSON, environment files) goes to stdout."""
    return Console(soft_wrap=True, highlight=False)
