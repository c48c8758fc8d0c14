"""Every id a doctor finding can have: one enum, so checks, fixes, scenarios and the experiment share it.

A check registers under one id and declares the related ids its findings may carry (the "xserver"
check also emits "ipc" and "xserver.port"); every one of them is here, and the registry holds each
check to what it declared (see ``registry``).
"""

from __future__ import annotations

from enum import StrEnum


class CheckId(StrEnum):
    ENGINE = "engine"
    GPU = "gpu"
    GPU_RUNTIME = "gpu-runtime"
    GPU_RUNTIME_ROCMINFO = "gpu-runtime.rocminfo"
    GPU_RUNTIME_ROCM_SMI = "gpu-runtime.rocm-smi"
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
