"""Which file XSched's HAL really opens as the real runtime (``FindLibrary`` in XSched 1.2).

Not the loader's answer: the HAL looks, in this order, at

1. its variable (``platform.runtime_lib_env``), if that file exists; else it warns
   ``lib set by env VAR = VALUE not found, fallback to dir search`` (a variable set to the empty
   string counts as set: XSched tests ``getenv() != nullptr``);
2. the platform's own folders (``platform.hal_search_dirs``);
3. ``common.hal_default_dirs`` in order (one of them, spelled as XSched spells it, never matches);

in steps 2 and 3, for each folder, each of ``platform.hal_search_names``, by full path
``dir + "/" + name``. It never reads ``LD_LIBRARY_PATH`` nor ``ld.so.cache``; a runtime that lives
only elsewhere is found only through the variable. When nothing is found it warns
``lib NAME not found`` for each name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from xsched_ops.xsched import platforms
from xsched_ops.xsched.platforms import Platform

FoundBy = Literal["variable", "platform folder", "system folder"]


class LookupFS(Protocol):
    """The file-system operations the lookup needs (a ``TargetFS`` has them)."""

    def isfile(self, path: str) -> bool: ...

    def realpath(self, path: str) -> str: ...


@dataclass(frozen=True)
class HalRuntimeLookup:
    """The outcome of the HAL's search for the real runtime."""

    path: str | None               # the file the HAL opens, as it spells it; None: it finds none
    found_by: FoundBy | None       # how it was found
    warnings: tuple[str, ...]      # what XSched prints (WARN level) on the way
    tried: tuple[str, ...]         # every path looked at, in order (the variable's value first)
    variable: str                  # XSCHED_HIP_LIB / XSCHED_CUDA_LIB
    value: str | None              # the variable's value, None when unset
    resolved: str | None = None    # realpath of ``path``

    @property
    def found(self) -> bool:
        return self.path is not None


def _exists(fs: LookupFS, path: str) -> bool:
    # A relative value would be resolved against the process's working directory, unknown here:
    # it counts as missing.
    return path.startswith("/") and fs.isfile(path)


def hal_runtime_lookup(platform: Platform, environment: Mapping[str, str], fs: LookupFS) -> HalRuntimeLookup:
    """The file XSched's HAL opens as the real runtime for a process with ``environment``."""
    variable = platform.runtime_lib_env
    value = environment.get(variable)
    tried: list[str] = []
    warnings: list[str] = []

    def result(path: str | None, found_by: FoundBy | None) -> HalRuntimeLookup:
        return HalRuntimeLookup(path=path, found_by=found_by, warnings=tuple(warnings), tried=tuple(tried),
                                variable=variable, value=value,
                                resolved=fs.realpath(path) if path is not None else None)

    if value is not None:
        tried.append(value)
        if _exists(fs, value):
            return result(value, "variable")
        warnings.append(f"lib set by env {variable} = {value} not found, fallback to dir search")
    stages: tuple[tuple[FoundBy, list[str]], ...] = (
        ("platform folder", platform.hal_search_dirs),
        ("system folder", platforms.common().hal_default_dirs),
    )
    for found_by, folders in stages:
        for folder in folders:
            for name in platform.hal_search_names:
                candidate = folder + "/" + name
                tried.append(candidate)
                if _exists(fs, candidate):
                    return result(candidate, found_by)
    warnings.extend(f"lib {name} not found" for name in platform.hal_search_names)
    return result(None, None)
