"""Helpers for tests that run experiments in sandbox containers."""

from __future__ import annotations

import subprocess


def leftover_processes(container: str) -> list[str]:
    """Processes of a run still in the container (workload, device, roles, xserver)."""
    listing = subprocess.run(["docker", "exec", container, "ps", "-eo", "pid,args"], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    return [line for line in listing.splitlines()[1:]
            if "xsched_ops_workload" in line or "xserver" in line]
