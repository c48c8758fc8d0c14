"""Start the GPU runtime the way an application does: its first entry point, called once.

An application reaches XSched's shim in one of two ways, and the spec's ``runtime`` models both
for the simulated backend, which has no runtime of its own:

- route libpath: the process loads the runtime by its usual name (``libcuda.so.1``); the install's
  softlink, first on ``LD_LIBRARY_PATH``, resolves that name to the shim. ``library`` is that name:
  the role loads it (RTLD_GLOBAL) and calls ``init_symbol(0)`` from it.
- route preload: the shim is already in the process and its entry points interpose on the
  runtime's. ``library`` is None: the role calls ``init_symbol`` as the process's global scope
  has it (the preloaded shim's, if the preload worked).

Either way the shim's HAL then looks for the real runtime, as in an application. A library that
cannot be loaded is a role failure with the loader's message; an entry point missing from the
global scope is recorded (the run's validity check judges the missing shim). A non-zero return of
the entry point is recorded, not judged: the sandbox has no GPU.
"""

from __future__ import annotations

import ctypes
import os
import threading

from xsched_ops_workload import evidence
from xsched_ops_workload.errors import WorkloadError


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


_lock = threading.Lock()
_started: dict[tuple[str | None, str], dict] = {}


def _defining_file(function) -> str | None:
    """The file that defines ``function`` (a ctypes function pointer), from ``dladdr``."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError):
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    if not dladdr(ctypes.cast(function, ctypes.c_void_p), ctypes.byref(info)) or not info.dli_fname:
        return None
    return info.dli_fname.decode(errors="replace")


def _mapped_files_named(prefix: str) -> list[str]:
    """Mapped files whose name starts with ``prefix`` (``libcuda``): after the entry point ran, the
    real runtime the shim forwarded to shows here."""
    if not prefix:
        return []
    try:
        return evidence.mapped_paths(evidence.read_maps("self"), lambda name: name.startswith(prefix))
    except OSError:
        return []


def load_runtime(library: str | None, init_symbol: str, file_prefix: str = "") -> dict:
    """Call ``init_symbol(0)`` once per process, from ``library`` (loaded by that name) or from the
    process's global scope (``library`` None); what happened, as a JSON-ready record.

    Raises WorkloadError when ``library`` cannot be loaded or lacks the entry point.
    """
    if library is not None and not file_prefix:
        file_prefix = os.path.basename(library).split(".so")[0] + ".so"
    key = (library, init_symbol)
    with _lock:
        if key in _started:
            return _started[key]
        record: dict = {"library": library, "init_symbol": init_symbol, "init_result": None,
                        "init_defined_in": None, "init_defined_in_real": None}
        if library is None:
            init = getattr(ctypes.CDLL(None), init_symbol, None)
            if init is None:
                record["note"] = f"{init_symbol} is not in the process: nothing provides it"
        else:
            try:
                handle = ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
            except OSError as err:
                raise WorkloadError(f"cannot load the runtime {library}: {err}") from err
            init = getattr(handle, init_symbol, None)
            if init is None:
                raise WorkloadError(f"the runtime {library} has no {init_symbol}")
        if init is not None:
            init.argtypes = [ctypes.c_uint]
            init.restype = ctypes.c_int
            record["init_result"] = int(init(0))
            defined_in = _defining_file(init)
            record["init_defined_in"] = defined_in
            record["init_defined_in_real"] = os.path.realpath(defined_in) if defined_in else None
        record["mapped_files"] = _mapped_files_named(file_prefix)
        _started[key] = record
        return record
