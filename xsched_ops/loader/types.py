"""What the loader model reports: frozen dataclasses, JSON-serializable through ``to_dict``.

``LoadReport`` is the whole answer for one program; the others are its parts. The field names
are a contract (the doctor, ``ldd --json`` and the tests read them): add, never rename.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

GLIBC_MODEL_VERSION = "2.36"
NOT_FOUND_TEXT = "cannot open shared object file: No such file or directory"


@dataclass(frozen=True)
class SearchStep:
    path: str  # the file tried (absolute in the target)
    source: str  # "RPATH of libfoo.so", "LD_LIBRARY_PATH entry 2", "ld.so.cache", "default directory"...
    outcome: str  # "found", "absent", "skipped: wrong ELF class (ELFCLASS32)", "error: invalid ELF header"


@dataclass(frozen=True)
class LoadedObject:
    position: int  # place in the global scope (0: the executable)
    path: str  # the path it was opened under (its ``l_name``)
    real_path: str
    requested_name: str
    needed_by: str | None  # path of the object whose DT_NEEDED (or the preload list) asked for it
    kind: str  # "executable", "preload", "needed", "interpreter"
    reason: str  # "found via LD_LIBRARY_PATH entry 1", "RUNPATH of libshimhip.so", "ld.so.cache"...
    soname: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...] | None
    runpath: tuple[str, ...] | None
    search: tuple[SearchStep, ...]


@dataclass(frozen=True)
class Edge:
    """One DT_NEEDED (or preload) request and what satisfied it."""

    needed_by: str
    name: str
    path: str | None  # None: not found
    reason: str
    reused: bool  # satisfied by an object already loaded (by name, SONAME or same file)


@dataclass(frozen=True)
class NotFound:
    name: str
    needed_by: str
    message: str  # the loader's text, e.g. "cannot open shared object file: No such file or directory"
    tried: tuple[SearchStep, ...]


@dataclass(frozen=True)
class FailedPreload:
    name: str
    source: str  # "LD_PRELOAD" or "/etc/ld.so.preload"
    warning: str  # the loader's exact warning line
    tried: tuple[SearchStep, ...]


@dataclass(frozen=True)
class ProviderCandidate:
    path: str
    reason: str  # how the loader reached (or would reach) it


@dataclass(frozen=True)
class UnresolvedSymbol:
    symbol: str
    demangled: str
    needed_by: str  # the object that references it
    version: str | None
    version_file: str | None
    when: str  # "startup" (the process dies before main) or "lazy" (dies at the first call)
    loaded_provider: ProviderCandidate | None  # the loaded file that was expected to define it
    expected_provider: ProviderCandidate | None  # a file on the same search path that does define it
    message: str  # the loader's text: "symbol lookup error: ...: undefined symbol: ..."


@dataclass(frozen=True)
class VersionProblem:
    needed_by: str
    provider: str
    file: str  # the DT_NEEDED name the requirement names
    version: str
    severity: str  # "error" (process does not start) or "warning"
    message: str


@dataclass(frozen=True)
class LoadReport:
    glibc_model: str
    executable: str
    cwd: str
    ld_library_path: str | None
    ld_preload: str | None
    ld_so_preload: tuple[str, ...]
    ld_so_cache: str  # format of the cache file that was read
    objects: tuple[LoadedObject, ...]
    edges: tuple[Edge, ...]
    not_found: tuple[NotFound, ...]
    failed_preloads: tuple[FailedPreload, ...]
    unresolved_symbols: tuple[UnresolvedSymbol, ...]
    version_problems: tuple[VersionProblem, ...]
    warnings: tuple[str, ...]
    symbols_checked: bool
    fatal_error: str | None  # the first error the real loader prints, without "PROGRAM: "
    would_start: bool

    def object_for(self, name_or_path: str) -> LoadedObject | None:
        for obj in self.objects:
            if name_or_path in (obj.path, obj.real_path, obj.requested_name, obj.soname):
                return obj
        return None

    def to_dict(self) -> dict:
        """``dataclasses.asdict(self)``, built without its deep copies (a report holds only
        strings, numbers, tuples and dataclasses)."""
        return _plain(self)

    def to_json(self, **kwargs: object) -> str:
        return json.dumps(self.to_dict(), **kwargs)  # type: ignore[arg-type]


def _plain(value: object) -> object:
    """What ``dataclasses.asdict`` makes of a report's values: dataclasses become dicts, tuples stay tuples."""
    names = _FIELD_NAMES.get(type(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if type(value) is tuple:
        return tuple(_plain(item) for item in value)
    if type(value) is list:
        return [_plain(item) for item in value]
    if type(value) is dict:
        return {key: _plain(item) for key, item in value.items()}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


for _report_type in (SearchStep, LoadedObject, Edge, NotFound, FailedPreload, ProviderCandidate, UnresolvedSymbol,
                     VersionProblem, LoadReport):
    _FIELD_NAMES[_report_type] = tuple(f.name for f in dataclasses.fields(_report_type))
