"""`xsched-ops sandbox`: a ROCm-like container that needs no registry and no GPU (filled by the sandbox work)."""

from __future__ import annotations

import typer

sandbox_app = typer.Typer(help="Create and remove sandbox containers (a ROCm-like image with an XSched-like install).",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
