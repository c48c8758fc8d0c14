"""Every id a doctor finding can have: one enum, so checks, fixes, scenarios and the experiment share it.

A check registers under one id and may emit findings under related ids (the "xserver" check also
emits "ipc" and "xserver.port"); every one of them is here.
"""

from __future__ import annotations

from enum import StrEnum


class CheckId(StrEnum):
    ENGINE = "engine"
    GPU = "gpu"
    GPU_RUNTIME = "gpu-runtime"
    PYTHON_TORCH = "python-torch"
    PYTHON = "python"
    TORCH = "torch"
    INSTALL = "install"
    PRELOAD = "preload"
    SHIM_LOADS = "shim-loads"
    RUNTIME_LIB = "runtime-lib"
    DUPLICATES = "duplicates"
    SETTINGS = "settings"
    GROUND_TRUTH = "ground-truth"
    GROUND_TRUTH_FIXED = "ground-truth.fixed"
    XSERVER = "xserver"
    XSERVER_PORT = "xserver.port"
    IPC = "ipc"
    LOADER_INFO = "loader-info"
    MPS = "mps"
