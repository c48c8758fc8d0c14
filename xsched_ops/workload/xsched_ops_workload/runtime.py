"""Load the GPU runtime the way an application does, and call its first entry point.

Under XSched's libpath route the shim reaches a process only when the process loads the runtime
by its usual name (``libcuda.so.1`` for CUDA): the install's softlink, first on
``LD_LIBRARY_PATH``, resolves that name to the shim. torch does this on its own; the simulated
backend has no runtime, so the spec's ``runtime`` tells the role process to do it: load the
library globally, then call the entry point (``cuInit(0)``) so that the shim finds the real driver
as it would in an application. A load that fails is a role failure with the loader's message.
A non-zero return of the entry point is recorded, not fatal: the sandbox has no GPU.
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
_loaded: dict[tuple[str, str], dict] = {}


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


def _mapped_files_named_like(library: str) -> list[str]:
    """Mapped files whose name starts like ``library`` (``libcuda``): after the entry point ran,
    the real runtime the shim forwarded to shows here beside the softlink's target."""
    stem = os.path.basename(library).split(".so")[0]
    try:
        maps = evidence.read_maps("self")
    except OSError:
        return []
    found: list[str] = []
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and os.path.basename(parts[5]).startswith(stem + ".so") and parts[5] not in found:
            found.append(parts[5])
    return found


def load_runtime(library: str, init_symbol: str) -> dict:
    """Load ``library`` (RTLD_GLOBAL) and call ``init_symbol(0)`` once per process; what happened.

    Raises WorkloadError when the library cannot be loaded or lacks the entry point.
    """
    key = (library, init_symbol)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        try:
            handle = ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
        except OSError as err:
            raise WorkloadError(f"cannot load the runtime {library}: {err}") from err
        try:
            init = getattr(handle, init_symbol)
        except AttributeError as err:
            raise WorkloadError(f"the runtime {library} has no {init_symbol}") from err
        init.argtypes = [ctypes.c_uint]
        init.restype = ctypes.c_int
        result = int(init(0))
        defined_in = _defining_file(init)
        record = {"library": library, "init_symbol": init_symbol, "init_result": result,
                  "init_defined_in": defined_in,
                  "init_defined_in_real": os.path.realpath(defined_in) if defined_in else None,
                  "mapped_files": _mapped_files_named_like(library)}
        _loaded[key] = record
        return record
