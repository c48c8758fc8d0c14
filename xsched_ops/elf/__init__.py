"""ELF reading for the loader model: dynamic view, symbols, ld.so.cache/ld.so.conf, demangling.

Public API::

    read_elf(fs: TargetFS, path: str, info=None) -> ElfObject # cached by (root, dev, ino, size, mtime)
    ElfObject.symbols() -> SymbolTable                        # read once; references decoded then,
        # .lookups, .name_index(), .candidates(name) for look-ups; .definitions, .symbols on first use
    read_elf_header_kind(fs, path) -> (class, machine, little_endian) | None
    clear_cache() -> None                                     # the ELF files and the parsed ld.so.caches
    read_ld_so_cache(fs, path="/etc/ld.so.cache") -> LdCache  # parsed once per version of the file
    parse_ld_so_cache(bytes) -> LdCache
    LdCache.lookup(name, required_flags, supported_hwcaps) -> CacheEntry | None
    read_ld_so_conf(fs, path="/etc/ld.so.conf") -> list[str]
    demangle_many(names) -> dict[str, str]; demangle(name) -> str; demangle_builtin(name) -> str

``ElfObject`` also keeps what the loader checks before it maps a file (``header``, ``segments``,
``dynamic_segment``, ``dynamic_entries``, ``dynamic_terminated``); ``xsched_ops.loader.verify``
judges them. Modules: ``reader`` (the dynamic view and its cache), ``constants`` (elf.h),
``symtab`` (the decoded symbol table), ``dynsym`` (reading it), ``ranges`` (byte ranges),
``ldcache``, ``demangle``.
"""

from xsched_ops.elf.demangle import demangle, demangle_builtin, demangle_many
from xsched_ops.elf.ldcache import (
    CacheEntry,
    LdCache,
    parse_ld_so_cache,
    read_ld_so_cache,
    read_ld_so_conf,
    required_cache_flags,
)
from xsched_ops.elf.reader import (
    ElfObject,
    LoadSegment,
    Symbol,
    SymbolReference,
    SymbolTable,
    VersionDefinition,
    VersionNeed,
    clear_cache,
    file_identity,
    read_elf,
    read_elf_header_kind,
)

__all__ = [
    "CacheEntry", "ElfObject", "LdCache", "LoadSegment", "Symbol", "SymbolReference", "SymbolTable", "VersionDefinition",
    "VersionNeed", "clear_cache", "demangle", "demangle_builtin", "demangle_many", "file_identity",
    "parse_ld_so_cache", "read_elf", "read_elf_header_kind", "read_ld_so_cache", "read_ld_so_conf",
    "required_cache_flags",
]
