"""`xsched-ops report` (placeholder: filled by its issue's work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
