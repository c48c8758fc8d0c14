"""Symbol binding as glibc 2.36 does it (``elf/dl-lookup.c``'s ``do_lookup_x`` and ``check_match``,
``elf/dl-version.c``'s version names), over the model's loaded objects.

What a global scope defines is answered once per scope and kept (``ScopeIndex``): every program
with the same libraries shares the look-ups of those libraries.
"""

from __future__ import annotations

import posixpath
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol

from xsched_ops.elf import ElfObject, Symbol, SymbolReference, SymbolTable, read_elf
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
from xsched_ops.loader.types import VersionProblem
from xsched_ops.target.fs import TargetFS

_ALLOWED_SYMBOL_TYPES = {STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC}

Key = tuple[str, "str | None", bool]  # what a look-up depends on: (name, version, hidden)


class _Versioned(Protocol):
    elf: ElfObject
    path: str
    names: set[str]


class _HasDeps(Protocol):
    elf: ElfObject
    deps: list  # the objects its DT_NEEDED entries resolved to


class ScopeIndex:
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
        self._defined: dict[Key, bool] = {}
        self._unresolved: dict[int, tuple[tuple[Key, int], ...]] = {}

    def defines(self, key: Key) -> bool:
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
                        answer = table.memo[key] = table_defines(table, key)
                    if answer:
                        known = True
                        break
            self._defined[key] = known
        return known

    def unresolved_references(self, elf: ElfObject) -> tuple[tuple[Key, int], ...]:
        """The look-ups of ``elf`` (one of the set's objects) no object of the set satisfies:
        (key, index in ``elf.symbols().references``)."""
        found = self._unresolved.get(id(elf))
        if found is None:
            defines = self.defines
            found = self._unresolved[id(elf)] = tuple(
                lookup for lookup in elf.symbols().lookups if not defines(lookup[0]))
        return found


_SCOPES: OrderedDict[tuple[int, ...], ScopeIndex] = OrderedDict()
_SCOPES_LOCK = threading.Lock()
_SCOPES_LIMIT = 2048  # distinct scopes and dependency closures kept (least recently used dropped)


def scope_index(elfs: tuple[ElfObject, ...]) -> ScopeIndex:
    """The index of a set of objects (whether one defines a symbol does not depend on their order)."""
    key = tuple(sorted({id(elf) for elf in elfs}))
    with _SCOPES_LOCK:
        index = _SCOPES.get(key)
        if index is not None:
            _SCOPES.move_to_end(key)
            return index
        index = _SCOPES[key] = ScopeIndex(elfs)
        if len(_SCOPES) > _SCOPES_LIMIT:
            _SCOPES.popitem(last=False)
        return index


def clear_lookups() -> None:
    """Forget every scope's look-ups and every object's version names."""
    with _SCOPES_LOCK:
        _SCOPES.clear()
    _VERSION_NAMES.clear()


def closure(m: _HasDeps) -> tuple[ElfObject, ...]:
    """``m`` and every object its DT_NEEDED entries reach, transitively."""
    seen = {id(m): m}
    pending = [m]
    while pending:
        for dep in pending.pop().deps:
            if id(dep) not in seen:
                seen[id(dep)] = dep
                pending.append(dep)
    return tuple(dep.elf for dep in seen.values())


def reference_key(reference: SymbolReference) -> Key:
    symbol = reference.symbol
    return symbol.name, symbol.version, symbol.version_hidden


_VERSION_NAMES: dict[int, tuple[ElfObject, frozenset[str]]] = {}


def version_names(elf: ElfObject) -> frozenset[str]:
    """The names of the versions ``elf`` defines (kept per object; objects are immutable)."""
    known = _VERSION_NAMES.get(id(elf))
    if known is None or known[0] is not elf:
        if len(_VERSION_NAMES) > 4096:
            _VERSION_NAMES.clear()
        known = _VERSION_NAMES[id(elf)] = (elf, frozenset(d.name for d in elf.version_definitions))
    return known[1]


def symbol_matches(definition: Symbol) -> bool:
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


def object_defines(elf: ElfObject, key: Key) -> bool:
    """Whether ``elf`` satisfies a reference to (name, version, hidden) under glibc's version
    rules (``do_lookup_x``)."""
    return table_defines(elf.symbols(), key)


def table_defines(table: SymbolTable, key: Key) -> bool:
    name, wanted, wanted_hidden = key
    candidates = table.candidates(name)
    if not candidates:
        return False
    versioned_candidates = 0
    for definition in candidates:
        if not symbol_matches(definition):
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

def find_definers(fs: TargetFS, symbol: str, folders: Iterable[str], version: str | None = None) -> list[str]:
    """Files in ``folders`` (paths in the target, in order) whose dynamic symbol table defines
    ``symbol`` (with ``version`` when given) as a loader-visible definition. Non-ELF files and
    unreadable folders are skipped; each file appears once (by path)."""
    found: list[str] = []
    key: Key = (symbol, version, False)
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
                if object_defines(elf, key):
                    found.append(path)
            except (ElfError, TargetPathError, OSError):
                continue
    return found


def check_versions(maps: Sequence[_Versioned]) -> list[VersionProblem]:
    """glibc's ``_dl_check_map_versions`` over the loaded objects (``elf/dl-version.c``)."""
    problems: list[VersionProblem] = []
    providers: dict[str, _Versioned | None] = {}
    for m in maps:
        for need in m.elf.version_needs:
            if need.file not in providers:
                providers[need.file] = next(
                    (p for p in maps if need.file in p.names or p.elf.soname == need.file), None)
            provider = providers[need.file]
            if provider is None:
                continue
            defined = version_names(provider.elf)
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

