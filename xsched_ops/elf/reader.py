"""Read what the dynamic loader reads from an ELF file, working from ``PT_DYNAMIC``.

Section headers are never needed (``sstrip``-ed files have none): every table is found through
the dynamic segment, and its virtual address is mapped to a file offset through ``PT_LOAD``.
Only the byte ranges that hold those tables are read (ROCm libraries reach gigabytes).

Two levels, so that a library costs only what its use needs:

* ``read_elf(fs, path)`` -- header, program headers, dynamic entries and the strings they name
  (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH), flags, and the version needs/definitions. This
  is all the path search needs. Cached by (st_dev, st_ino, st_size, st_mtime_ns).
* ``ElfObject.symbols()`` -- the dynamic symbol table, decoded in bulk (one read of the whole
  table, ``struct.iter_unpack``), with each symbol's version and the relocations that refer to
  it. Computed on first use only, for the libraries whose symbols are consulted.

Modules: ``constants`` (elf.h), ``symtab`` (the decoded symbol table), ``dynsym`` (reading it),
``ranges`` (byte ranges, address to offset); this one reads the dynamic view and caches it.

Everything is decoded with ``struct``: pyelftools' per-symbol iteration costs ~23 us a symbol
(seconds for a ROCm library) and building its header structures ~1 ms a file; pyelftools only
names unusual machines (``machine_name``).
"""

from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass, field
from typing import BinaryIO

from xsched_ops.elf.constants import *  # noqa: F403 - the reader's names, as before the split
from xsched_ops.elf.constants import (
    DF_1_NODEFLIB,
    DF_1_NOW,
    DF_BIND_NOW,
    DT_AUXILIARY,
    DT_BIND_NOW,
    DT_FILTER,
    DT_FLAGS,
    DT_FLAGS_1,
    DT_NEEDED,
    DT_NULL,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_STRTAB,
    DT_VERDEF,
    DT_VERDEFNUM,
    DT_VERNEED,
    DT_VERNEEDNUM,
    ELFCLASS32,
    ELFCLASS64,
    EM_386,
    EM_AARCH64,
    EM_X86_64,
    PT_DYNAMIC,
    PT_INTERP,
    PT_LOAD,
    VER_FLG_BASE,
    VER_FLG_WEAK,
)
from xsched_ops.elf.dynsym import read_symbol_table
from xsched_ops.elf.ranges import MALFORMED as _MALFORMED
from xsched_ops.elf.ranges import RangeReader as _RangeReader
from xsched_ops.elf.ranges import malformed as _malformed
from xsched_ops.elf.ranges import offset_of as _offset_of
from xsched_ops.elf.symtab import Symbol, SymbolReference, SymbolTable, VersionDefinition, VersionNeed
from xsched_ops.errors import ElfError, TargetPathError
from xsched_ops.target.fs import TargetFS

__all__ = ["ElfObject", "LoadSegment", "Symbol", "SymbolReference", "SymbolTable", "VersionDefinition", "VersionNeed",
           "clear_cache", "file_identity", "machine_name", "read_elf", "read_elf_header_kind"]

_DYNAMIC_LIMIT = 1 << 20  # a dynamic segment larger than this is not a real one


@dataclass(frozen=True)
class LoadSegment:
    """One PT_LOAD program header: what the loader maps, and from where in the file."""

    vaddr: int
    offset: int
    file_size: int
    memory_size: int
    flags: int  # PF_R | PF_W | PF_X


@dataclass(eq=False)
class ElfObject:
    """The dynamic-loading view of one ELF file. ``path`` is the path it was read under."""

    path: str
    elf_class: int  # 1: 32-bit, 2: 64-bit
    little_endian: bool
    machine: int
    machine_name: str
    elf_type: int
    os_abi: int
    interpreter: str | None
    needed: tuple[str, ...]
    soname: str | None
    rpath: tuple[str, ...] | None  # split on ':'; None when absent (an empty string is an entry)
    runpath: tuple[str, ...] | None
    flags: int
    flags_1: int
    has_dynamic: bool
    version_needs: tuple[VersionNeed, ...]
    version_definitions: tuple[VersionDefinition, ...]
    has_filters: bool
    file_size: int
    bytes_read: int = 0
    # What the loader checks before and while mapping the file (``xsched_ops.loader.verify``):
    header: bytes = b""  # the first 64 bytes (fewer when the file is shorter)
    segments: tuple[LoadSegment, ...] = ()  # the PT_LOAD headers that were in the file
    dynamic_segment: tuple[int, int] | None = None  # PT_DYNAMIC (offset, file size)
    dynamic_entries: int = 0  # dynamic entries read before DT_NULL (or before the file ended)
    dynamic_terminated: bool = False  # a DT_NULL entry was in the file
    _fs: TargetFS | None = field(default=None, repr=False)
    _layout: dict[int, int] = field(default_factory=dict, repr=False)
    _load_segments: tuple[tuple[int, int, int], ...] = field(default=(), repr=False)
    _symbols: SymbolTable | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    @property
    def bind_now(self) -> bool:
        return bool(self.flags & DF_BIND_NOW or self.flags_1 & DF_1_NOW or DT_BIND_NOW in self._layout)

    @property
    def class_name(self) -> str:
        return "ELFCLASS64" if self.elf_class == ELFCLASS64 else "ELFCLASS32"

    def symbols(self) -> SymbolTable:
        """The dynamic symbol table, decoded on first use (bulk reads only)."""
        with self._lock:
            if self._symbols is None:
                if self._fs is None:
                    raise ElfError(f"{self.path}: no file system to read symbols from")
                with self._fs.open(self.path) as stream:
                    try:
                        self._symbols = read_symbol_table(self, _RangeReader(stream, self))
                    except _MALFORMED as err:
                        raise _malformed(self.path, err) from err
            return self._symbols


# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------
_CACHE: dict[tuple[object, int, int, int, int], ElfObject] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every ELF file read (with its symbol table) and every parsed ld.so.cache."""
    from xsched_ops.elf.ldcache import clear_parsed_caches

    with _CACHE_LOCK:
        _CACHE.clear()
    clear_parsed_caches()


def _fs_key(fs: TargetFS) -> object:
    """Which view of the files ``fs`` is: its root for the file systems of ``target.fs`` (a new
    object for the same container or this host shares what was read), else the object's id (an
    ElfObject keeps its file system alive, so the id is not reused while it is cached)."""
    root = getattr(fs, "root", None)
    return (type(fs).__name__, root) if isinstance(root, str) else id(fs)


def read_elf(fs: TargetFS, path: str, info: os.stat_result | None = None) -> ElfObject:
    """Read the loader's view of ``path`` (a path in the target), from a cache when unchanged.

    ``info`` is ``fs.stat(path)`` when the caller has it already. Raises ``TargetPathError``
    when the file cannot be opened and ``ElfError`` when it is not an ELF file (the loader's
    "invalid ELF header" / "file too short").
    """
    if info is None:
        try:
            info = fs.stat(path)
        except OSError as err:
            raise TargetPathError(f"{path}: {err.strerror or err}", "check the path in the target") from err
    key = (_fs_key(fs), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        with fs.open(path) as stream:
            parsed = _read_dynamic_view(fs, path, stream, info.st_size)
    except IsADirectoryError as err:
        raise ElfError(f"{path}: cannot read file data: Is a directory") from err
    except OSError as err:
        raise TargetPathError(f"{path}: {err.strerror or err}", "check the path and its permissions") from err
    except _MALFORMED as err:
        raise _malformed(path, err) from err
    with _CACHE_LOCK:
        _CACHE[key] = parsed
    return parsed


# A header or table that points outside the file, or beyond any offset (e_phoff = 2**63), or is cut


def read_elf_header_kind(fs: TargetFS, path: str) -> tuple[int, int, bool] | None:
    """(class, machine, little_endian) of an ELF file, or None when it is not ELF; reads 20 bytes."""
    try:
        with fs.open(path) as stream:
            head = stream.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    little = head[5] == 1
    machine = struct.unpack("<H" if little else ">H", head[18:20])[0]
    return head[4], machine, little


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------
_MACHINE_NAMES = {EM_X86_64: "Advanced Micro Devices X86-64", EM_386: "Intel 80386", EM_AARCH64: "AArch64"}


def machine_name(machine: int) -> str:
    """pyelftools' description of ``e_machine`` (imported only for machines other than the usual three)."""
    name = _MACHINE_NAMES.get(machine)
    if name is None:
        from elftools.elf.descriptions import describe_e_machine
        from elftools.elf.enums import ENUM_E_MACHINE

        by_number = {number: symbol for symbol, number in ENUM_E_MACHINE.items() if isinstance(number, int)}
        name = _MACHINE_NAMES[machine] = describe_e_machine(by_number.get(machine, machine))
    return name


def _read_dynamic_view(fs: TargetFS, path: str, stream: BinaryIO, file_size: int) -> ElfObject:
    reader = _RangeReader(stream)
    ident = reader.read(0, 64)
    if len(ident) < 16:
        raise ElfError(f"{path}: file too short", "this is not an ELF shared object")
    if ident[:4] != b"\x7fELF":
        raise ElfError(f"{path}: invalid ELF header", "this is not an ELF shared object (a linker script or text file?)")
    elf_class = ident[4]
    if elf_class not in (ELFCLASS32, ELFCLASS64) or ident[5] not in (1, 2):
        raise ElfError(f"{path}: invalid ELF header (class {ident[4]}, data {ident[5]})")
    little = ident[5] == 1
    order = "<" if little else ">"
    # e_type e_machine e_version e_entry e_phoff e_shoff e_flags e_ehsize e_phentsize e_phnum ...
    header_format = order + ("HHIQQQIHHHHHH" if elf_class == ELFCLASS64 else "HHIIIIIHHHHHH")
    if len(ident) < 16 + struct.calcsize(header_format):
        raise ElfError(f"{path}: file too short for an ELF header")
    elf_type, machine, _, _, e_phoff, _, _, _, e_phentsize, e_phnum, _, _, _ = struct.unpack_from(
        header_format, ident, 16)
    name_of_machine = machine_name(machine)

    # Program headers, in one read.
    if elf_class == ELFCLASS64:
        phdr_format = order + "IIQQQQQQ"  # type flags offset vaddr paddr filesz memsz align
    else:
        phdr_format = order + "IIIIIIII"  # type offset vaddr paddr filesz memsz flags align
    phdr_size = struct.calcsize(phdr_format)
    phentsize = e_phentsize or phdr_size
    program_headers = reader.read(e_phoff, phentsize * e_phnum)
    loads: list[tuple[int, int, int]] = []
    segments: list[LoadSegment] = []
    dynamic: tuple[int, int] | None = None
    interp: tuple[int, int] | None = None
    for i in range(len(program_headers) // phentsize):
        values = struct.unpack_from(phdr_format, program_headers, i * phentsize)
        if elf_class == ELFCLASS64:
            p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = values
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, p_memsz, p_flags, _ = values
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
            segments.append(LoadSegment(p_vaddr, p_offset, p_filesz, p_memsz, p_flags))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            interp = (p_offset, p_filesz)

    interpreter = None
    if interp is not None:
        interpreter = reader.read(interp[0], min(interp[1], 4096)).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    obj = ElfObject(
        path=path, elf_class=elf_class, little_endian=little, machine=machine,
        machine_name=name_of_machine, elf_type=elf_type, os_abi=ident[7], interpreter=interpreter,
        needed=(), soname=None, rpath=None, runpath=None, flags=0, flags_1=0,
        has_dynamic=dynamic is not None, version_needs=(), version_definitions=(),
        has_filters=False, file_size=file_size, _fs=fs, _load_segments=tuple(loads),
        header=ident, segments=tuple(segments), dynamic_segment=dynamic,
    )
    if dynamic is None:
        obj.bytes_read = reader.bytes_read
        return obj

    entry_format = order + ("qQ" if elf_class == ELFCLASS64 else "iI")
    raw = reader.read(dynamic[0], min(dynamic[1], _DYNAMIC_LIMIT))
    raw = raw[: len(raw) - len(raw) % struct.calcsize(entry_format)]
    needed_offsets: list[int] = []
    single: dict[int, int] = {}
    for tag, value in struct.iter_unpack(entry_format, raw):
        if tag == DT_NULL:
            obj.dynamic_terminated = True
            break
        obj.dynamic_entries += 1
        if tag == DT_NEEDED:
            needed_offsets.append(value)
        elif tag in (DT_FILTER, DT_AUXILIARY):
            single[tag] = value
        else:
            single.setdefault(tag, value)
    obj._layout = single

    strtab = _offset_of(obj, single.get(DT_STRTAB))
    if strtab is None:
        if not obj.dynamic_terminated:  # the file ends inside its dynamic section: the loader's verdict
            obj.bytes_read = reader.bytes_read  # (xsched_ops.loader.verify) judges it as it stands
            return obj
        raise ElfError(f"{path}: dynamic segment without a usable DT_STRTAB")

    def dyn_string(offset: int) -> str:
        return reader.string(strtab + offset)

    obj.needed = tuple(dyn_string(offset) for offset in needed_offsets)
    if DT_SONAME in single:
        obj.soname = dyn_string(single[DT_SONAME])
    if DT_RPATH in single:
        obj.rpath = tuple(dyn_string(single[DT_RPATH]).split(":"))
    if DT_RUNPATH in single:
        obj.runpath = tuple(dyn_string(single[DT_RUNPATH]).split(":"))
    obj.flags = single.get(DT_FLAGS, 0)
    obj.flags_1 = single.get(DT_FLAGS_1, 0)
    obj.has_filters = DT_FILTER in single or DT_AUXILIARY in single
    obj.version_needs = _read_version_needs(obj, reader, strtab, single)
    obj.version_definitions = _read_version_definitions(obj, reader, strtab, single)
    obj.bytes_read = reader.bytes_read
    return obj


def _read_version_needs(obj: ElfObject, reader: _RangeReader, strtab: int,
                        dynamic: dict[int, int]) -> tuple[VersionNeed, ...]:
    start = _offset_of(obj, dynamic.get(DT_VERNEED))
    count = dynamic.get(DT_VERNEEDNUM, 0)
    if start is None or count == 0:
        return ()
    order = "<" if obj.little_endian else ">"
    needs: list[VersionNeed] = []
    entry = start
    for _ in range(count):
        _, aux_count, file_offset, aux, next_offset = struct.unpack(order + "HHIII", reader.read(entry, 16))
        file_name = reader.string(strtab + file_offset)
        aux_entry = entry + aux
        for _ in range(aux_count):
            _, flags, other, name_offset, aux_next = struct.unpack(order + "IHHII", reader.read(aux_entry, 16))
            needs.append(VersionNeed(file=file_name, version=reader.string(strtab + name_offset),
                                     index=other, weak=bool(flags & VER_FLG_WEAK)))
            if aux_next == 0:
                break
            aux_entry += aux_next
        if next_offset == 0:
            break
        entry += next_offset
    return tuple(needs)


def _read_version_definitions(obj: ElfObject, reader: _RangeReader, strtab: int,
                              dynamic: dict[int, int]) -> tuple[VersionDefinition, ...]:
    start = _offset_of(obj, dynamic.get(DT_VERDEF))
    count = dynamic.get(DT_VERDEFNUM, 0)
    if start is None or count == 0:
        return ()
    order = "<" if obj.little_endian else ">"
    definitions: list[VersionDefinition] = []
    entry = start
    for _ in range(count):
        _, flags, index, aux_count, _, aux, next_offset = struct.unpack(order + "HHHHIII", reader.read(entry, 20))
        names: list[str] = []
        aux_entry = entry + aux
        for _ in range(aux_count):
            name_offset, aux_next = struct.unpack(order + "II", reader.read(aux_entry, 8))
            names.append(reader.string(strtab + name_offset))
            if aux_next == 0:
                break
            aux_entry += aux_next
        definitions.append(VersionDefinition(index=index, name=names[0] if names else "",
                                             is_base=bool(flags & VER_FLG_BASE),
                                             hidden_names=tuple(names[1:])))
        if next_offset == 0:
            break
        entry += next_offset
    return tuple(definitions)



def file_identity(fs: TargetFS, path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file ``path`` resolves to, as glibc compares objects."""
    try:
        info = fs.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino

