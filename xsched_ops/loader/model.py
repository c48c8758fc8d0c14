"""A model of glibc 2.36's dynamic loader (``elf/rtld.c``, ``elf/dl-load.c``, ``elf/dl-deps.c``,
``elf/dl-lookup.c``, ``elf/dl-version.c``), run over a target's files without executing anything.

Version notes (where other glibc versions behave differently):

* glibc-hwcaps subfolders exist since 2.33; legacy hwcaps subfolders (``tls``, ``haswell``,
  ``x86_64``...) are searched up to 2.36 and were removed in 2.37.
* ``LD_LIBRARY_PATH`` accepts ``;`` as a separator as well as ``:`` (all versions in use).
* The ``$ORIGIN`` of the main program comes from ``/proc/self/exe`` (symbolic links resolved);
  under ``ld.so --list PROG`` it is the folder of the path given instead. The model uses the
  former (a program that is executed).
* glibc < 2.35 had ``LD_PRELOAD`` split on spaces and colons too; ``--preload`` (2.30+) is not
  modelled. DT_FILTER/DT_AUXILIARY filtees are not modelled (noted as a warning).
* Symbol lookups: the model applies glibc's ``check_match`` rules; copy relocations, protected
  data and ``STB_GNU_UNIQUE`` tables are not modelled beyond "a definition is found".
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import posixpath
import stat as stat_module
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from xsched_ops.elf import (
    ElfObject,
    LdCache,
    Symbol,
    SymbolReference,
    SymbolTable,
    clear_cache,
    demangle_many,
    read_elf,
    read_ld_so_cache,
    required_cache_flags,
)
from xsched_ops.elf.reader import (
    SHN_ABS,
    SHN_UNDEF,
    STB_LOCAL,
    STT_COMMON,
    STT_FUNC,
    STT_GNU_IFUNC,
    STT_NOTYPE,
    STT_OBJECT,
    STT_TLS,
    STV_HIDDEN,
    STV_INTERNAL,
)
from xsched_ops.errors import ElfError, TargetPathError
from xsched_ops.loader.platform import LoaderPlatform, detect_platform
from xsched_ops.target.fs import TargetFS

GLIBC_MODEL_VERSION = "2.36"
NOT_FOUND_TEXT = "cannot open shared object file: No such file or directory"
_ALLOWED_SYMBOL_TYPES = {STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC}


# ---------------------------------------------------------------------------------------------
# Results (frozen, JSON-serializable through ``dataclasses.asdict``)
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# What analyses share: the file system's answers, the ld.so.cache, the global scope's look-ups
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _this_cpu_platform() -> LoaderPlatform:
    return detect_platform()  # /proc/cpuinfo does not change while the process runs


class LoaderSession:
    """What a batch of analyses in one target shares (``analyze_many``; a model without one gets
    its own, so that one analysis asks each question once).

    The platform, the ld.so.cache (parsed once per process anyway, see ``read_ld_so_cache``),
    and the file system's answers: ``stat``, ``realpath``, glibc's ``open_verify`` outcome for
    each path, the hwcaps subfolders of each folder and /etc/ld.so.preload. The target's files
    are taken as unchanging while the batch runs.
    """

    def __init__(self, fs: TargetFS, platform: LoaderPlatform | None = None, cache: LdCache | None = None) -> None:
        self.fs = fs
        self.platform = platform or _this_cpu_platform()
        self.cache = cache if cache is not None else read_ld_so_cache(fs)
        self.cache_flags = required_cache_flags(self.platform.machine, self.platform.elf_class)
        self._stat: dict[str, os.stat_result | None] = {}
        self._realpath: dict[str, str] = {}
        self.verified: dict[str, tuple[str, ElfObject | None]] = {}
        self.subdirs: dict[str, tuple[str, ...]] = {}
        self._ld_so_preload: list[str] | None = None

    def stat(self, path: str) -> os.stat_result | None:
        try:
            return self._stat[path]
        except KeyError:
            pass
        try:
            info: os.stat_result | None = self.fs.stat(path)
        except OSError:
            info = None
        self._stat[path] = info
        return info

    def realpath(self, path: str) -> str:
        resolved = self._realpath.get(path)
        if resolved is None:
            resolved = self._realpath[path] = self.fs.realpath(path)
        return resolved

    def identity(self, path: str) -> tuple[int, int] | None:
        info = self.stat(path)
        return (info.st_dev, info.st_ino) if info is not None else None

    def isdir(self, path: str) -> bool:
        info = self.stat(path)
        return info is not None and stat_module.S_ISDIR(info.st_mode)

    def isfile(self, path: str) -> bool:
        info = self.stat(path)
        return info is not None and stat_module.S_ISREG(info.st_mode)

    def read_elf(self, path: str) -> ElfObject:
        """``read_elf`` with the session's ``stat`` (TargetPathError when the path is absent)."""
        info = self.stat(path)
        if info is None:
            raise TargetPathError(f"{path}: no such file", "check the path in the target")
        return read_elf(self.fs, path, info)

    def ld_so_preload(self) -> list[str]:
        if self._ld_so_preload is None:
            self._ld_so_preload = _read_ld_so_preload(self.fs)
        return list(self._ld_so_preload)


_Key = tuple[str, "str | None", bool]  # what a look-up depends on: (name, version, hidden)


class _ScopeIndex:
    """Symbol look-ups in a set of objects: a global scope without its program (the preloads and
    the libraries), shared by every program whose libraries are the same files, or a library's
    dependency closure, shared by every scope that holds that library.

    ``defines`` answers once per distinct reference (name, version, hidden) and
    ``unresolved_references`` once per object, so a program costs only its own references and
    the few its libraries leave open (which the program itself may define).
    """

    def __init__(self, elfs: tuple[ElfObject, ...]) -> None:
        self.elfs = elfs  # keeps the objects (and so their ids, the cache key) alive
        self._tables: list[tuple[SymbolTable, dict[str, int]]] | None = None  # (table, its name index)
        self._defined: dict[_Key, bool] = {}
        self._unresolved: dict[int, tuple[tuple[_Key, int], ...]] = {}

    def defines(self, key: _Key) -> bool:
        """Whether an object of the set satisfies a reference to (name, version, hidden)."""
        known = self._defined.get(key)
        if known is None:
            tables = self._tables
            if tables is None:
                tables = self._tables = [(elf.symbols(), elf.symbols().name_index()) for elf in self.elfs]
            known = False
            name = key[0]
            for table, names in tables:  # a name lookup first: most objects do not define it at all
                if name in names:
                    # the answer of one object is the same in every set: kept with its table
                    answer = table.memo.get(key)
                    if answer is None:
                        answer = table.memo[key] = _table_defines(table, key)
                    if answer:
                        known = True
                        break
            self._defined[key] = known
        return known

    def unresolved_references(self, elf: ElfObject) -> tuple[tuple[_Key, int], ...]:
        """The look-ups of ``elf`` (one of the set's objects) no object of the set satisfies:
        (key, index in ``elf.symbols().references``)."""
        found = self._unresolved.get(id(elf))
        if found is None:
            defines = self.defines
            found = self._unresolved[id(elf)] = tuple(
                lookup for lookup in elf.symbols().lookups if not defines(lookup[0]))
        return found


_SCOPES: OrderedDict[tuple[int, ...], _ScopeIndex] = OrderedDict()
_SCOPES_LOCK = threading.Lock()
_SCOPES_LIMIT = 2048  # distinct scopes and dependency closures kept (least recently used dropped)


def _scope_index(elfs: tuple[ElfObject, ...]) -> _ScopeIndex:
    """The index of a set of objects (whether one defines a symbol does not depend on their order)."""
    key = tuple(sorted({id(elf) for elf in elfs}))
    with _SCOPES_LOCK:
        index = _SCOPES.get(key)
        if index is not None:
            _SCOPES.move_to_end(key)
            return index
        index = _SCOPES[key] = _ScopeIndex(elfs)
        if len(_SCOPES) > _SCOPES_LIMIT:
            _SCOPES.popitem(last=False)
        return index


def clear_caches() -> None:
    """Forget every file read (ELF files, symbol tables, ld.so.cache) and every look-up kept."""
    clear_cache()
    with _SCOPES_LOCK:
        _SCOPES.clear()
    _VERSION_NAMES.clear()


def _closure(m: _Map) -> tuple[ElfObject, ...]:
    """``m`` and every object its DT_NEEDED entries reach, transitively."""
    seen = {id(m): m}
    pending = [m]
    while pending:
        for dep in pending.pop().deps:
            if id(dep) not in seen:
                seen[id(dep)] = dep
                pending.append(dep)
    return tuple(dep.elf for dep in seen.values())


def _key(reference: SymbolReference) -> _Key:
    symbol = reference.symbol
    return symbol.name, symbol.version, symbol.version_hidden


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Map:
    """A loaded object while the model runs (glibc's ``struct link_map``)."""

    elf: ElfObject
    path: str
    real_path: str
    identity: tuple[int, int] | None
    requested_name: str
    loader: _Map | None
    kind: str
    reason: str
    search: tuple[SearchStep, ...]
    names: set[str] = field(default_factory=set)
    in_scope: bool = True
    deps: list[_Map] = field(default_factory=list)  # the objects its DT_NEEDED entries resolved to

    @property
    def origin(self) -> str:
        return posixpath.dirname(self.path) or "/"


class _Failure(Exception):
    """A load that failed: ``message`` is the loader's text, ``fatal`` when not a plain "not found"."""

    def __init__(self, message: str, tried: tuple[SearchStep, ...]) -> None:
        super().__init__(message)
        self.message = message
        self.tried = tried


class LoaderModel:
    def __init__(self, fs: TargetFS, env: Mapping[str, str], cwd: str, platform: LoaderPlatform | None = None,
                 cache: LdCache | None = None, session: LoaderSession | None = None) -> None:
        if session is None:
            session = LoaderSession(fs, platform, cache)
        elif session.fs is not fs:
            raise ValueError("the session belongs to another file system")
        self.session = session
        self.fs = fs
        self.env = dict(env)
        self.cwd = cwd if cwd.startswith("/") else "/" + cwd
        self.platform = platform or session.platform
        self.cache = cache if cache is not None else session.cache
        self.maps: list[_Map] = []
        self.main: _Map | None = None
        self.interpreter: _Map | None = None  # the dynamic linker: in the namespace from the start
        self._subdir_cache = session.subdirs if self.platform is session.platform else {}
        self._verified = session.verified if self.platform is session.platform else {}
        self.warnings: list[str] = []

    # -- paths -----------------------------------------------------------------------------------
    def _absolute(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, path)) if not path.startswith("/") else path

    def _expand_dst(self, text: str, origin: str) -> str:
        for token, value in (("ORIGIN", origin), ("LIB", self.platform.lib), ("PLATFORM", self.platform.platform)):
            text = text.replace("${" + token + "}", value)
            # "$ORIGIN" only when the token ends there (glibc's is_dst)
            result = []
            rest = text
            marker = "$" + token
            while marker in rest:
                before, _, after = rest.partition(marker)
                if after[:1].isalnum() or after[:1] == "_":
                    result.append(before + marker)
                else:
                    result.append(before + value)
                rest = after
            text = "".join(result) + rest
        return text

    def _existing_subdirs(self, folder: str) -> tuple[str, ...]:
        """Hwcaps subfolders of ``folder`` that exist (glibc skips the others without a trace)."""
        cached = self._subdir_cache.get(folder)
        if cached is None:
            firsts: dict[str, bool] = {}
            found = []
            for sub in self.platform.subdirectories():
                first = sub.split("/", 1)[0]
                if first not in firsts:
                    firsts[first] = self.session.isdir(posixpath.join(folder, first))
                if firsts[first] and self.session.isdir(posixpath.join(folder, sub)):
                    found.append(sub)
            cached = self._subdir_cache[folder] = tuple(found)
        return cached

    def _verify(self, path: str) -> tuple[str, ElfObject | None]:
        """glibc's ``open_verify``: ("found", elf), ("absent"|"skipped: ...", None) or ("error: ...", None)."""
        verified = self._verified.get(path)
        if verified is None:
            verified = self._verified[path] = self._open_verify(path)
        return verified

    def _open_verify(self, path: str) -> tuple[str, ElfObject | None]:
        info = self.session.stat(path)
        if info is None:
            return "absent", None
        if stat_module.S_ISDIR(info.st_mode):
            return "error: cannot read file data", None
        try:
            elf = read_elf(self.fs, path, info)
        except ElfError as err:
            text = err.message.split(": ", 1)[-1]
            return f"error: {text.split(' (')[0]}", None
        except TargetPathError:
            return "absent", None
        if elf.elf_class != self.platform.elf_class:
            return f"skipped: wrong ELF class ({elf.class_name})", None
        if elf.machine != self.platform.machine:
            return f"skipped: wrong machine ({elf.machine_name})", None
        if elf.elf_type not in (2, 3):
            return "error: only ET_DYN and ET_EXEC can be loaded", None
        return "found", elf

    def _try_folder(self, folder: str, name: str, source: str, steps: list[SearchStep]) -> tuple[str, ElfObject] | None:
        folder = folder.rstrip("/") or "/"
        absolute_folder = self._absolute(folder) if folder else self.cwd
        for sub in (*self._existing_subdirs(absolute_folder), ""):
            path = posixpath.join(absolute_folder, sub, name) if sub else posixpath.join(absolute_folder, name)
            outcome, elf = self._verify(path)
            label = f"{source} (glibc-hwcaps or legacy subfolder {sub})" if sub else source
            steps.append(SearchStep(path, label, outcome))
            if elf is not None:
                return path, elf
            if outcome.startswith("error: "):
                raise _Failure(outcome.removeprefix("error: "), tuple(steps))
        return None

    # -- name lookup among loaded objects --------------------------------------------------------
    def _find_loaded(self, name: str) -> _Map | None:
        candidates = list(self.maps)
        if self.interpreter is not None and self.interpreter not in candidates:
            candidates.append(self.interpreter)
        for m in candidates:
            if name in m.names:
                return m
            if m.elf.soname == name:
                m.names.add(name)
                return m
        return None

    def _search(self, name: str, requester: _Map) -> tuple[str, ElfObject, str, tuple[SearchStep, ...]]:
        """glibc's ``_dl_map_object`` search for a name (no reuse): (path, elf, reason, steps)."""
        steps: list[SearchStep] = []
        if "/" in name:
            path = self._absolute(self._expand_dst(name, requester.origin))
            outcome, elf = self._verify(path)
            steps.append(SearchStep(path, "path given", outcome))
            if elf is not None:
                return path, elf, "path given", tuple(steps)
            if outcome.startswith("error: "):
                raise _Failure(outcome.removeprefix("error: "), tuple(steps))
            raise _Failure(self._not_found_text(steps), tuple(steps))

        def run(folders: Iterable[str], source: str, origin: str) -> tuple[str, ElfObject, str] | None:
            for folder in folders:
                expanded = self._expand_dst(folder, origin)
                hit = self._try_folder(expanded, name, source, steps)
                if hit is not None:
                    return hit[0], hit[1], source
            return None

        if requester.elf.runpath is None:
            chain = requester
            visited: list[_Map] = []
            while chain is not None:
                visited.append(chain)
                if chain.elf.rpath is not None and chain.elf.runpath is None:
                    hit = run(chain.elf.rpath, f"RPATH of {posixpath.basename(chain.path)}", chain.origin)
                    if hit:
                        return (*hit, tuple(steps))
                chain = chain.loader
            main = self.main
            if main is not None and main not in visited and main.elf.rpath is not None and main.elf.runpath is None:
                hit = run(main.elf.rpath, f"RPATH of {posixpath.basename(main.path)} (the executable)", main.origin)
                if hit:
                    return (*hit, tuple(steps))
        library_path = self.env.get("LD_LIBRARY_PATH")
        if library_path is not None:
            main_origin = self.main.origin if self.main else self.cwd
            entries = library_path.replace(";", ":").split(":")
            for number, entry in enumerate(entries, start=1):
                hit = run([entry], f"LD_LIBRARY_PATH entry {number}" + (" (empty: current directory)" if not entry else ""),
                          main_origin)
                if hit:
                    return (*hit, tuple(steps))
        if requester.elf.runpath is not None:
            hit = run(requester.elf.runpath, f"RUNPATH of {posixpath.basename(requester.path)}", requester.origin)
            if hit:
                return (*hit, tuple(steps))
        nodeflib = requester.elf.nodeflib
        entry = self.cache.lookup(name, self._cache_flags(), self.platform.glibc_hwcaps)
        if entry is not None:
            in_system_dir = any(entry.path.startswith(d + "/") for d in self.platform.system_dirs)
            if nodeflib and in_system_dir:
                steps.append(SearchStep(entry.path, "ld.so.cache", "skipped: DF_1_NODEFLIB of the requester"))
            else:
                outcome, elf = self._verify(entry.path)
                steps.append(SearchStep(entry.path, "ld.so.cache", outcome))
                if elf is not None:
                    return entry.path, elf, "ld.so.cache", tuple(steps)
                if outcome.startswith("error: "):
                    raise _Failure(outcome.removeprefix("error: "), tuple(steps))
        if not nodeflib:
            hit = run(self.platform.system_dirs, "default directory", self.cwd)
            if hit:
                return (*hit, tuple(steps))
        else:
            steps.append(SearchStep("", "default directories", "skipped: DF_1_NODEFLIB of the requester"))
        raise _Failure(self._not_found_text(steps), tuple(steps))

    def _cache_flags(self) -> int:
        if self.platform is self.session.platform:
            return self.session.cache_flags
        return required_cache_flags(self.platform.machine, self.platform.elf_class)

    def _not_found_text(self, steps: list[SearchStep]) -> str:
        if any(s.outcome.startswith("skipped: wrong ELF class") for s in steps):
            return "wrong ELF class: ELFCLASS32" if self.platform.elf_class == 2 else "wrong ELF class: ELFCLASS64"
        return NOT_FOUND_TEXT

    def _map_object(self, name: str, requester: _Map, kind: str) -> tuple[_Map, bool]:
        """Load ``name`` for ``requester``: (map, reused). Raises ``_Failure``."""
        existing = self._find_loaded(name)
        if existing is not None:
            return existing, True
        path, elf, reason, steps = self._search(name, requester)
        real_path = self.session.realpath(path)
        identity = self.session.identity(path)
        for m in [*self.maps, *([self.interpreter] if self.interpreter else [])]:
            if identity is not None and m.identity == identity:
                m.names.add(name)
                return m, True
        new = _Map(elf=elf, path=path, real_path=real_path, identity=identity, requested_name=name,
                   loader=requester, kind=kind, reason=_describe(reason), search=steps, names={name, path})
        return new, False

    # -- the whole start-up ----------------------------------------------------------------------
    def run(self, executable: str, check_symbols: bool = True) -> LoadReport:
        exe_path = self._absolute(executable)
        try:
            exe_elf = self.session.read_elf(exe_path)
        except TargetPathError as err:
            raise TargetPathError(f"{executable}: no such file in the target", "give a path to an ELF file") from err
        if exe_elf.machine != self.platform.machine or exe_elf.elf_class != self.platform.elf_class:
            raise ElfError(f"{executable}: {exe_elf.class_name} {exe_elf.machine_name} cannot run under "
                           f"{self.platform.interpreter}", "the model covers x86-64 programs")
        main = _Map(elf=exe_elf, path=exe_path, real_path=self.session.realpath(exe_path),
                    identity=self.session.identity(exe_path), requested_name=executable, loader=None,
                    kind="executable", reason="the program", search=(), names={exe_path})
        self.main = main
        self.maps.append(main)
        interpreter_path = exe_elf.interpreter or self.platform.interpreter
        try:
            interpreter_elf = self.session.read_elf(interpreter_path)
            self.interpreter = _Map(
                elf=interpreter_elf, path=interpreter_path, real_path=self.session.realpath(interpreter_path),
                identity=self.session.identity(interpreter_path), requested_name=interpreter_path, loader=None,
                kind="interpreter", reason="the dynamic linker itself (PT_INTERP), loaded before everything",
                search=(), names={interpreter_path, posixpath.basename(interpreter_path)})
        except (ElfError, TargetPathError):
            self.warnings.append(f"dynamic linker {interpreter_path} not readable in the target")

        edges: list[Edge] = []
        not_found: list[NotFound] = []
        failed_preloads: list[FailedPreload] = []

        preload_env = self.env.get("LD_PRELOAD")
        preload_names = [p for p in (preload_env or "").replace(":", " ").split(" ") if p]
        ld_so_preload = self.session.ld_so_preload()
        for source, names in (("LD_PRELOAD", preload_names), ("/etc/ld.so.preload", ld_so_preload)):
            for name in names:
                try:
                    loaded, reused = self._map_object(name, main, "preload")
                except _Failure as failure:
                    warning = (f"ERROR: ld.so: object '{name}' from {source} cannot be preloaded "
                               f"({failure.message.removesuffix(': No such file or directory')}): ignored.")
                    failed_preloads.append(FailedPreload(name, source, warning, failure.tried))
                    edges.append(Edge(main.path, name, None, f"{source}: cannot be preloaded, ignored", False))
                    continue
                if not reused:
                    loaded.reason = f"{source} ({loaded.reason})"
                    self.maps.append(loaded)
                edges.append(Edge(main.path, name, loaded.path, f"{source}: {loaded.reason}", reused))

        # Breadth-first over DT_NEEDED (glibc's _dl_map_object_deps), starting with the program
        # and the preloads in order.
        index = 0
        while index < len(self.maps):
            current = self.maps[index]
            index += 1
            if current.elf.has_filters:
                self.warnings.append(f"{current.path}: DT_FILTER/DT_AUXILIARY filtees are not modelled")
            for name in current.elf.needed:
                try:
                    loaded, reused = self._map_object(name, current, "needed")
                except _Failure as failure:
                    not_found.append(NotFound(name, current.path, failure.message, failure.tried))
                    edges.append(Edge(current.path, name, None, f"not found: {failure.message}", False))
                    continue
                current.deps.append(loaded)
                if loaded not in self.maps:
                    self.maps.append(loaded)
                    reused_reason = loaded.reason
                    edges.append(Edge(current.path, name, loaded.path, reused_reason, reused and loaded.kind != "interpreter"))
                else:
                    edges.append(Edge(current.path, name, loaded.path, f"already loaded ({loaded.reason})", True))

        version_problems = self._check_versions()
        unresolved: list[UnresolvedSymbol] = []
        if check_symbols:
            unresolved = self._resolve_symbols()

        objects = tuple(
            LoadedObject(position=i, path=m.path, real_path=m.real_path, requested_name=m.requested_name,
                         needed_by=m.loader.path if m.loader else None, kind=m.kind, reason=m.reason,
                         soname=m.elf.soname, needed=m.elf.needed, rpath=m.elf.rpath, runpath=m.elf.runpath,
                         search=m.search)
            for i, m in enumerate(self.maps))
        fatal = self._fatal_error(not_found, version_problems, unresolved)
        return LoadReport(
            glibc_model=GLIBC_MODEL_VERSION, executable=exe_path, cwd=self.cwd,
            ld_library_path=self.env.get("LD_LIBRARY_PATH"), ld_preload=preload_env,
            ld_so_preload=tuple(ld_so_preload), ld_so_cache=self.cache.format, objects=objects, edges=tuple(edges),
            not_found=tuple(not_found), failed_preloads=tuple(failed_preloads),
            unresolved_symbols=tuple(unresolved), version_problems=tuple(version_problems),
            warnings=tuple(self.warnings), symbols_checked=check_symbols, fatal_error=fatal,
            would_start=fatal is None)

    # -- versions (dl-version.c) -----------------------------------------------------------------
    def _check_versions(self) -> list[VersionProblem]:
        problems: list[VersionProblem] = []
        providers: dict[str, _Map | None] = {}
        for m in self.maps:
            for need in m.elf.version_needs:
                if need.file not in providers:
                    providers[need.file] = next(
                        (p for p in self.maps if need.file in p.names or p.elf.soname == need.file), None)
                provider = providers[need.file]
                if provider is None:
                    continue
                defined = _version_names(provider.elf)
                if not provider.elf.version_definitions:
                    message = f"{provider.path}: no version information available (required by {m.path})"
                    if not any(p.message == message for p in problems):
                        problems.append(VersionProblem(m.path, provider.path, need.file, need.version, "warning", message))
                    continue
                if need.version in defined:
                    continue
                if need.weak:
                    problems.append(VersionProblem(
                        m.path, provider.path, need.file, need.version, "warning",
                        f"{provider.path}: weak version `{need.version}' not found (required by {m.path})"))
                else:
                    problems.append(VersionProblem(
                        m.path, provider.path, need.file, need.version, "error",
                        f"{provider.path}: version `{need.version}' not found (required by {m.path})"))
        return problems

    # -- symbols (dl-lookup.c) -------------------------------------------------------------------
    def _resolve_symbols(self) -> list[UnresolvedSymbol]:
        """Every looked-up reference (not weak, used by a relocation) no object of the global scope defines.

        The scope is the program followed by the others; the others' look-ups are shared with
        every program that has the same libraries (``_ScopeIndex``), and what they leave open is
        then looked up in the program itself.
        """
        missing: list[tuple[_Map, SymbolReference]] = []
        bind_now_env = self.env.get("LD_BIND_NOW", "") != ""
        main = self.maps[0]
        scope = _scope_index(tuple(m.elf for m in self.maps[1:]))
        main_table = main.elf.symbols()
        for m in self.maps:
            if m is main:
                open_lookups: Iterable[tuple[_Key, int]] = [
                    lookup for lookup in main_table.lookups if not scope.defines(lookup[0])]
            else:
                # A library's references are first looked up among its own dependencies (the
                # same files for every program that loads it), then what is left in the scope.
                closure = _scope_index(_closure(m))
                open_lookups = closure.unresolved_references(m.elf)
                if closure is not scope:
                    open_lookups = [lookup for lookup in open_lookups if not scope.defines(lookup[0])]
            for key, number in open_lookups:  # the program's own names are indexed only when needed here
                if key[0] not in main_table.name_index() or not _table_defines(main_table, key):
                    missing.append((m, m.elf.symbols().references[number]))
        names = demangle_many(ref.symbol.name for _, ref in missing)
        unresolved = []
        for m, reference in missing:
            symbol = reference.symbol
            when = "startup" if reference.at_startup or bind_now_env else "lazy"
            loaded_provider, expected_provider = self._providers(m, reference)
            version_text = f", version {symbol.version}" if symbol.version else ""
            unresolved.append(UnresolvedSymbol(
                symbol=symbol.name, demangled=names[symbol.name], needed_by=m.path, version=symbol.version,
                version_file=reference.version_file, when=when, loaded_provider=loaded_provider,
                expected_provider=expected_provider,
                message=f"symbol lookup error: {m.path}: undefined symbol: {symbol.name}{version_text}"))
        return unresolved

    def _providers(self, m: _Map, reference: SymbolReference) -> tuple[ProviderCandidate | None, ProviderCandidate | None]:
        """Which loaded dependency of ``m`` should have defined the symbol, and which file would.

        For each direct dependency name of ``m`` (the version's file first), every file the search
        path offers under that name is checked, in search order: the first that defines the
        symbol is the expected provider, and the loaded file for that name the loaded provider.
        """
        names = list(m.elf.needed)
        if reference.version_file in names:
            names.remove(reference.version_file)
            names.insert(0, reference.version_file)
        fallback: tuple[ProviderCandidate | None, ProviderCandidate | None] = (None, None)
        for name in names:
            loaded = next((p for p in self.maps if name in p.names), None)
            if loaded is None:
                continue
            loaded_candidate = ProviderCandidate(loaded.path, loaded.reason)
            if reference.version_file == name and fallback == (None, None):
                fallback = (loaded_candidate, None)
            for path, source in self._all_candidates(name, m):
                if self.session.identity(path) == loaded.identity:
                    continue
                try:
                    elf = read_elf(self.fs, path)
                except (ElfError, TargetPathError):
                    continue
                if elf.machine == self.platform.machine and elf.elf_class == self.platform.elf_class \
                        and _map_defines(elf, _key(reference)):
                    return loaded_candidate, ProviderCandidate(path, _describe(source))
        return fallback

    def _all_candidates(self, name: str, requester: _Map) -> list[tuple[str, str]]:
        """Every existing file named ``name`` along the requester's whole search path, in order."""
        if "/" in name:
            return []
        folders: list[tuple[str, str, str]] = []
        if requester.elf.runpath is None:
            chain: _Map | None = requester
            while chain is not None:
                if chain.elf.rpath is not None:
                    folders += [(f, f"RPATH of {posixpath.basename(chain.path)}", chain.origin) for f in chain.elf.rpath]
                chain = chain.loader
        library_path = self.env.get("LD_LIBRARY_PATH")
        if library_path is not None:
            folders += [(f, f"LD_LIBRARY_PATH entry {n}", self.main.origin if self.main else self.cwd)
                        for n, f in enumerate(library_path.replace(";", ":").split(":"), start=1)]
        if requester.elf.runpath is not None:
            folders += [(f, f"RUNPATH of {posixpath.basename(requester.path)}", requester.origin)
                        for f in requester.elf.runpath]
        folders += [(f, "default directory", self.cwd) for f in self.platform.system_dirs]
        found: list[tuple[str, str]] = []
        for folder, source, origin in folders:
            folder = self._absolute(self._expand_dst(folder, origin) or ".")
            path = posixpath.join(folder, name)
            if self.session.isfile(path) and all(path != p for p, _ in found):
                found.append((path, source))
        entry = self.cache.lookup(name, self._cache_flags(), self.platform.glibc_hwcaps)
        if entry is not None and all(entry.path != p for p, _ in found):
            found.append((entry.path, "ld.so.cache"))
        return found

    def _fatal_error(self, not_found: list[NotFound], versions: list[VersionProblem],
                     unresolved: list[UnresolvedSymbol]) -> str | None:
        if not_found:
            first = not_found[0]
            return f"error while loading shared libraries: {first.name}: {first.message}"
        errors = [v for v in versions if v.severity == "error"]
        if errors:
            return errors[0].message
        # Relocation runs from the last loaded object to the first; within one object in
        # relocation order.
        order = {m.path: i for i, m in enumerate(self.maps)}
        startup = [u for u in unresolved if u.when == "startup"]
        if startup:
            positions = {}
            for m in self.maps:
                if m.path in {u.needed_by for u in startup}:
                    for ref in m.elf.symbols().references:
                        positions[(m.path, ref.symbol.name)] = ref.first_relocation
            startup.sort(key=lambda u: (-order[u.needed_by], positions.get((u.needed_by, u.symbol), 0)))
            return startup[0].message
        return None


_VERSION_NAMES: dict[int, tuple[ElfObject, frozenset[str]]] = {}


def _version_names(elf: ElfObject) -> frozenset[str]:
    """The names of the versions ``elf`` defines (kept per object; objects are immutable)."""
    known = _VERSION_NAMES.get(id(elf))
    if known is None or known[0] is not elf:
        if len(_VERSION_NAMES) > 4096:
            _VERSION_NAMES.clear()
        known = _VERSION_NAMES[id(elf)] = (elf, frozenset(d.name for d in elf.version_definitions))
    return known[1]


def _describe(source: str) -> str:
    if source.startswith("LD_LIBRARY_PATH") or source == "default directory":
        return f"found via {source}"
    return source


def _read_ld_so_preload(fs: TargetFS) -> list[str]:
    try:
        with fs.open("/etc/ld.so.preload") as stream:
            text = stream.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return []
    return [p for p in text.replace(":", " ").replace("\t", " ").replace("\n", " ").split(" ") if p]


def _symbol_matches(definition: Symbol) -> bool:
    """glibc's ``check_match`` for a definition candidate (without the unique-version fallback)."""
    if definition.section_index == SHN_UNDEF:
        return False
    if definition.value == 0 and definition.section_index != SHN_ABS and definition.type != STT_TLS:
        return False
    if definition.type not in _ALLOWED_SYMBOL_TYPES or definition.binding == STB_LOCAL:
        return False
    if definition.visibility in (STV_HIDDEN, STV_INTERNAL):
        return False
    return True


def _map_defines(elf: ElfObject, key: _Key) -> bool:
    """Whether ``elf`` satisfies a reference to (name, version, hidden) under glibc's version
    rules (``do_lookup_x``)."""
    return _table_defines(elf.symbols(), key)


def _table_defines(table: SymbolTable, key: _Key) -> bool:
    name, wanted, wanted_hidden = key
    candidates = table.candidates(name)
    if not candidates:
        return False
    versioned_candidates = 0
    for definition in candidates:
        if not _symbol_matches(definition):
            continue
        if definition.version_index < 0:  # the provider has no versym table: any version is fine
            return True
        index = definition.version_index
        if wanted is not None:
            if definition.version == wanted:
                return True
            # A reference to a version accepts an unversioned (base or global) definition only.
            if not wanted_hidden and index < 2 and not definition.version_hidden:
                return True
            continue
        if index >= 3:  # an unversioned reference takes the oldest default only, or a unique version
            if not definition.version_hidden:
                versioned_candidates += 1
            continue
        return True
    return versioned_candidates == 1


def analyze(fs: TargetFS, executable: str, env: Mapping[str, str], cwd: str = "/",
            check_symbols: bool = True, platform: LoaderPlatform | None = None,
            cache: LdCache | None = None) -> LoadReport:
    """Model the start of ``executable`` (a path in the target) under ``env`` and ``cwd``."""
    return LoaderModel(fs, env, cwd, platform=platform, cache=cache).run(executable, check_symbols=check_symbols)


def analyze_many(fs: TargetFS, executables: Iterable[str], env: Mapping[str, str], cwd: str = "/",
                 check_symbols: bool = True, platform: LoaderPlatform | None = None,
                 cache: LdCache | None = None) -> Iterator[LoadReport]:
    """``analyze`` for each executable in turn, with one ``LoaderSession``: the file system's
    answers are shared, so a library found for one program is not searched for again."""
    session = LoaderSession(fs, platform, cache)
    for executable in executables:
        yield LoaderModel(fs, env, cwd, session=session).run(executable, check_symbols=check_symbols)


def find_definers(fs: TargetFS, symbol: str, folders: Iterable[str], version: str | None = None) -> list[str]:
    """Files in ``folders`` (paths in the target, in order) whose dynamic symbol table defines
    ``symbol`` (with ``version`` when given) as a loader-visible definition. Non-ELF files and
    unreadable folders are skipped; each file appears once (by path)."""
    found: list[str] = []
    key: _Key = (symbol, version, False)
    for folder in folders:
        try:
            names = fs.listdir(folder)
        except OSError:
            continue
        for name in names:
            if ".so" not in name:
                continue
            path = posixpath.join(folder, name)
            if path in found or not fs.isfile(path):
                continue
            try:
                elf = read_elf(fs, path)
                if _map_defines(elf, key):
                    found.append(path)
            except (ElfError, TargetPathError, OSError):
                continue
    return found


for _report_type in (SearchStep, LoadedObject, Edge, NotFound, FailedPreload, ProviderCandidate, UnresolvedSymbol,
                     VersionProblem, LoadReport):
    _FIELD_NAMES[_report_type] = tuple(f.name for f in dataclasses.fields(_report_type))
