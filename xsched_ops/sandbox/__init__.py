"""The sandbox: a ROCm-like container that needs no registry and no GPU.

* ``image``: the Debian bookworm image (debootstrap, then ``docker import``), built once;
* ``install``: the XSched-like install compiled from ``docker/xsched-like`` with g++, cached;
* ``scenarios``: what each scenario puts where and what the doctor should find, as data;
* ``containers``: create, list and remove labelled sandbox containers.
"""

from __future__ import annotations

from xsched_ops.sandbox.containers import (
    SandboxInfo,
    create_sandbox,
    list_sandboxes,
    remove_all,
    remove_sandbox,
)
from xsched_ops.sandbox.scenarios import SCENARIOS, Scenario

__all__ = [
    "SCENARIOS",
    "SandboxInfo",
    "Scenario",
    "create_sandbox",
    "list_sandboxes",
    "remove_all",
    "remove_sandbox",
]
