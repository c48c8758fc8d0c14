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

The ELF header is parsed with pyelftools' structures; the tables are decoded with ``struct``
because pyelftools' per-symbol iteration costs ~23 us a symbol (seconds for a ROCm library).
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field
from typing import BinaryIO

from elftools.common.exceptions import ELFError as PyElfToolsError
from elftools.elf.descriptions import describe_e_machine
from elftools.elf.structs import ELFStructs

from xsched_ops.errors import ElfError, TargetPathError
from xsched_ops.target.fs import TargetFS

# Program header types and dynamic tags (elf.h).
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3

DT_NULL = 0
DT_NEEDED = 1
DT_PLTRELSZ = 2
DT_HASH = 4
DT_STRTAB = 5
DT_SYMTAB = 6
DT_RELA = 7
DT_RELASZ = 8
DT_RELAENT = 9
DT_STRSZ = 10
DT_SYMENT = 11
DT_SONAME = 14
DT_RPATH = 15
DT_REL = 17
DT_RELSZ = 18
DT_RELENT = 19
DT_PLTREL = 20
DT_JMPREL = 23
DT_BIND_NOW = 24
DT_RUNPATH = 29
DT_FLAGS = 30
DT_GNU_HASH = 0x6FFFFEF5
DT_VERSYM = 0x6FFFFFF0
DT_FLAGS_1 = 0x6FFFFFFB
DT_VERDEF = 0x6FFFFFFC
DT_VERDEFNUM = 0x6FFFFFFD
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF
DT_AUXILIARY = 0x7FFFFFFD
DT_FILTER = 0x7FFFFFFF

DF_BIND_NOW = 0x8
DF_1_NOW = 0x1
DF_1_NODEFLIB = 0x800

ELFCLASS32 = 1
ELFCLASS64 = 2

ET_EXEC = 2
ET_DYN = 3

EM_386 = 3
EM_X86_64 = 62
EM_AARCH64 = 183

SHN_UNDEF = 0
SHN_ABS = 0xFFF1

STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_COMMON, STT_TLS = 0, 1, 2, 3, 4, 5, 6
STT_GNU_IFUNC = 10
STV_DEFAULT, STV_INTERNAL, STV_HIDDEN, STV_PROTECTED = 0, 1, 2, 3

VER_FLG_BASE = 0x1
VER_FLG_WEAK = 0x2
VERSYM_HIDDEN = 0x8000

BINDING_NAMES = {STB_LOCAL: "LOCAL", STB_GLOBAL: "GLOBAL", STB_WEAK: "WEAK", STB_GNU_UNIQUE: "UNIQUE"}
TYPE_NAMES = {
    STT_NOTYPE: "NOTYPE", STT_OBJECT: "OBJECT", STT_FUNC: "FUNC", STT_SECTION: "SECTION",
    STT_FILE: "FILE", STT_COMMON: "COMMON", STT_TLS: "TLS", STT_GNU_IFUNC: "IFUNC",
}
VISIBILITY_NAMES = {STV_DEFAULT: "DEFAULT", STV_INTERNAL: "INTERNAL", STV_HIDDEN: "HIDDEN",
                    STV_PROTECTED: "PROTECTED"}

# Relocation types that go through the PLT (lazy binding) per machine: only these may defer
# a missing symbol until the function is first called.
_PLT_RELOCATION_TYPES = {EM_X86_64: {7}, EM_386: {7}, EM_AARCH64: {1026}}  # JUMP_SLOT
# Relocation types that carry no symbol lookup (RELATIVE, IRELATIVE).
_SYMBOL_FREE_RELOCATION_TYPES = {EM_X86_64: {8, 37}, EM_386: {8, 42}, EM_AARCH64: {1027, 1032}}

_STRING_CHUNK = 256
_DYNAMIC_LIMIT = 1 << 20  # a dynamic segment larger than this is not a real one


@dataclass(frozen=True)
class VersionNeed:
    """One version an object requires from one of its dependencies (an ``Elf_Vernaux``)."""

    file: str  # the dependency's name as in its DT_NEEDED (vn_file)
    version: str
    index: int  # vna_other: the value the object's versym carries for symbols of this version
    weak: bool


@dataclass(frozen=True)
class VersionDefinition:
    index: int
    name: str
    is_base: bool  # VER_FLG_BASE: the file's own name, not a symbol version
    hidden_names: tuple[str, ...] = ()  # parents (further aux entries)


@dataclass(frozen=True)
class Symbol:
    """One entry of the dynamic symbol table, with its version resolved to a name."""

    index: int
    name: str
    binding: int
    type: int
    visibility: int
    section_index: int
    value: int
    version: str | None  # for a definition: its verdef name; for a reference: its verneed name
    version_hidden: bool  # versym bit 15: a non-default version (``foo@V`` not ``foo@@V``)
    version_index: int  # versym & 0x7fff, or -1 without versym

    @property
    def is_defined(self) -> bool:
        return self.section_index != SHN_UNDEF

    @property
    def binding_name(self) -> str:
        return BINDING_NAMES.get(self.binding, str(self.binding))

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, str(self.type))

    @property
    def visibility_name(self) -> str:
        return VISIBILITY_NAMES.get(self.visibility, str(self.visibility))


@dataclass(frozen=True)
class SymbolReference:
    """An undefined symbol the object refers to, with how the loader will look it up."""

    symbol: Symbol
    version_file: str | None  # the dependency the version requirement names, if any
    at_startup: bool  # looked up during start-up relocation (data, GOT, or bind-now)
    lazy: bool  # only referenced through the PLT: looked up when first called
    first_relocation: int  # position of its first relocation (start-up order), or -1


@dataclass
class SymbolTable:
    """The decoded dynamic symbol table of one object."""

    symbols: list[Symbol]
    definitions: dict[str, list[Symbol]]  # every name with at least one defined entry
    references: list[SymbolReference]  # undefined, non-local, named entries
    bind_now: bool

    def defines(self, name: str) -> bool:
        return name in self.definitions


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
                    self._symbols = _read_symbol_table(self, _RangeReader(stream, self))
            return self._symbols


class _RangeReader:
    """Reads byte ranges from an open file and counts the bytes read."""

    def __init__(self, stream: BinaryIO, owner: ElfObject | None = None) -> None:
        self.stream = stream
        self.owner = owner
        self.bytes_read = 0

    def read(self, offset: int, size: int) -> bytes:
        if size <= 0:
            return b""
        self.stream.seek(offset)
        data = self.stream.read(size)
        self.bytes_read += len(data)
        if self.owner is not None:
            self.owner.bytes_read += len(data)
        return data

    def string(self, offset: int) -> str:
        parts: list[bytes] = []
        while True:
            chunk = self.read(offset, _STRING_CHUNK)
            if not chunk:
                break
            end = chunk.find(b"\0")
            if end >= 0:
                parts.append(chunk[:end])
                break
            parts.append(chunk)
            offset += len(chunk)
        return b"".join(parts).decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------
_CACHE: dict[tuple[int, int, int, int, int], ElfObject] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def read_elf(fs: TargetFS, path: str) -> ElfObject:
    """Read the loader's view of ``path`` (a path in the target), from a cache when unchanged.

    Raises ``TargetPathError`` when the file cannot be opened and ``ElfError`` when it is not
    an ELF file (the loader's "invalid ELF header" / "file too short").
    """
    try:
        info = fs.stat(path)
    except OSError as err:
        raise TargetPathError(f"{path}: {err.strerror or err}", "check the path in the target") from err
    key = (id(fs), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
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
    with _CACHE_LOCK:
        _CACHE[key] = parsed
    return parsed


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
    structs = ELFStructs(little_endian=little, elfclass=32 if elf_class == ELFCLASS32 else 64)
    structs.create_basic_structs()
    try:
        header = structs.Elf_Ehdr.parse(ident)
    except Exception as err:  # construct raises its own errors on short input
        raise ElfError(f"{path}: file too short for an ELF header") from err
    order = "<" if little else ">"
    raw_header = struct.unpack_from(order + "HH", ident, 16)
    elf_type, machine = raw_header
    try:
        machine_name = describe_e_machine(header.e_machine)
    except PyElfToolsError:
        machine_name = str(header.e_machine)

    # Program headers, in one read.
    if elf_class == ELFCLASS64:
        phdr_format = order + "IIQQQQQQ"  # type flags offset vaddr paddr filesz memsz align
    else:
        phdr_format = order + "IIIIIIII"  # type offset vaddr paddr filesz memsz flags align
    phdr_size = struct.calcsize(phdr_format)
    phentsize = header.e_phentsize or phdr_size
    program_headers = reader.read(header.e_phoff, phentsize * header.e_phnum)
    loads: list[tuple[int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    interp: tuple[int, int] | None = None
    for i in range(len(program_headers) // phentsize):
        values = struct.unpack_from(phdr_format, program_headers, i * phentsize)
        if elf_class == ELFCLASS64:
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = values
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, _, _, _ = values
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            interp = (p_offset, p_filesz)

    interpreter = None
    if interp is not None:
        interpreter = reader.read(interp[0], min(interp[1], 4096)).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    obj = ElfObject(
        path=path, elf_class=elf_class, little_endian=little, machine=machine,
        machine_name=machine_name, elf_type=elf_type, os_abi=ident[7], interpreter=interpreter,
        needed=(), soname=None, rpath=None, runpath=None, flags=0, flags_1=0,
        has_dynamic=dynamic is not None, version_needs=(), version_definitions=(),
        has_filters=False, file_size=file_size, _fs=fs, _load_segments=tuple(loads),
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
            break
        if tag == DT_NEEDED:
            needed_offsets.append(value)
        elif tag in (DT_FILTER, DT_AUXILIARY):
            single[tag] = value
        else:
            single.setdefault(tag, value)
    obj._layout = single

    strtab = _offset_of(obj, single.get(DT_STRTAB))
    if strtab is None:
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


def _offset_of(obj: ElfObject, address: int | None) -> int | None:
    """File offset of a virtual address, through the PT_LOAD segments."""
    if address is None:
        return None
    for vaddr, offset, filesz in obj._load_segments:
        if vaddr <= address < vaddr + filesz:
            return address - vaddr + offset
    return None


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


def _symbol_count(obj: ElfObject, reader: _RangeReader) -> int:
    """Number of dynamic symbols, from DT_HASH's nchain or by walking DT_GNU_HASH."""
    order = "<" if obj.little_endian else ">"
    layout = obj._layout
    hash_offset = _offset_of(obj, layout.get(DT_HASH))
    if hash_offset is not None:
        return struct.unpack(order + "II", reader.read(hash_offset, 8))[1]
    gnu_offset = _offset_of(obj, layout.get(DT_GNU_HASH))
    if gnu_offset is None:
        return 0
    nbuckets, symoffset, bloom_size, _ = struct.unpack(order + "IIII", reader.read(gnu_offset, 16))
    bloom_word = 8 if obj.elf_class == ELFCLASS64 else 4
    buckets_offset = gnu_offset + 16 + bloom_size * bloom_word
    buckets = struct.unpack(order + f"{nbuckets}I", reader.read(buckets_offset, 4 * nbuckets))
    last_bucket = max(buckets, default=0)
    if last_bucket < symoffset:
        return symoffset
    chain_offset = buckets_offset + 4 * nbuckets
    index = last_bucket
    while True:  # the chain of the last bucket ends with a value whose low bit is set
        block = reader.read(chain_offset + 4 * (index - symoffset), 4096)
        if len(block) < 4:
            return index
        for (value,) in struct.iter_unpack(order + "I", block[: len(block) - len(block) % 4]):
            index += 1
            if value & 1:
                return index


def _read_symbol_table(obj: ElfObject, reader: _RangeReader) -> SymbolTable:
    order = "<" if obj.little_endian else ">"
    layout = obj._layout
    symtab = _offset_of(obj, layout.get(DT_SYMTAB))
    strtab = _offset_of(obj, layout.get(DT_STRTAB))
    if symtab is None or strtab is None:
        return SymbolTable(symbols=[], definitions={}, references=[], bind_now=obj.bind_now)
    count = _symbol_count(obj, reader)
    if obj.elf_class == ELFCLASS64:
        entry_format = order + "IBBHQQ"  # name info other shndx value size
    else:
        entry_format = order + "IIIBBH"  # name value size info other shndx
    entry_size = layout.get(DT_SYMENT) or struct.calcsize(entry_format)
    raw = reader.read(symtab, count * entry_size)
    count = len(raw) // entry_size
    strings = reader.read(strtab, layout.get(DT_STRSZ, 0))
    versym_offset = _offset_of(obj, layout.get(DT_VERSYM))
    versyms: tuple[int, ...] | None = None
    if versym_offset is not None:
        versym_raw = reader.read(versym_offset, 2 * count)
        versyms = tuple(v for (v,) in struct.iter_unpack(order + "H", versym_raw[: len(versym_raw) & ~1]))

    definition_names = {d.index: d.name for d in obj.version_definitions}
    need_by_index = {n.index: n for n in obj.version_needs}
    symbols: list[Symbol] = []
    definitions: dict[str, list[Symbol]] = {}
    undefined: list[Symbol] = []
    find = strings.find
    is64 = obj.elf_class == ELFCLASS64
    if entry_size != struct.calcsize(entry_format):
        raise ElfError(f"{obj.path}: unexpected DT_SYMENT {entry_size}")
    for index, values in enumerate(struct.iter_unpack(entry_format, raw[: count * entry_size])):
        if is64:
            name_offset, info, other, shndx, value, _ = values
        else:
            name_offset, value, _, info, other, shndx = values
        end = find(b"\0", name_offset)
        name = strings[name_offset:end if end >= 0 else None].decode("utf-8", "surrogateescape")
        version: str | None = None
        hidden = False
        version_index = -1
        if versyms is not None and index < len(versyms):
            raw_version = versyms[index]
            hidden = bool(raw_version & VERSYM_HIDDEN)
            version_index = raw_version & 0x7FFF
            if version_index > 1:
                if shndx == SHN_UNDEF:
                    need = need_by_index.get(version_index)
                    version = need.version if need else None
                else:
                    version = definition_names.get(version_index)
        symbol = Symbol(index=index, name=name, binding=info >> 4, type=info & 0xF, visibility=other & 0x3,
                        section_index=shndx, value=value, version=version, version_hidden=hidden,
                        version_index=version_index)
        symbols.append(symbol)
        if index == 0 or not name:
            continue
        if shndx != SHN_UNDEF:
            definitions.setdefault(name, []).append(symbol)
        elif symbol.binding != STB_LOCAL:
            undefined.append(symbol)

    startup_first, plt_only = _relocation_uses(obj, reader, count)
    bind_now = obj.bind_now
    references: list[SymbolReference] = []
    for symbol in undefined:
        first = startup_first.get(symbol.index, -1)
        in_plt = symbol.index in plt_only
        at_startup = first >= 0 or (bind_now and in_plt)
        need = need_by_index.get(symbol.version_index) if symbol.version_index > 1 else None
        references.append(SymbolReference(symbol=symbol, version_file=need.file if need else None,
                                          at_startup=at_startup, lazy=in_plt and not at_startup,
                                          first_relocation=first if first >= 0 else (
                                              plt_only.get(symbol.index, -1) if at_startup else -1)))
    return SymbolTable(symbols=symbols, definitions=definitions, references=references, bind_now=bind_now)


def _relocation_uses(obj: ElfObject, reader: _RangeReader, symbol_count: int) -> tuple[dict[int, int], dict[int, int]]:
    """Symbol indices referenced by start-up relocations (first position) and by PLT ones.

    Positions count DT_REL/DT_RELA first, then DT_JMPREL, the order glibc applies them in.
    """
    order = "<" if obj.little_endian else ">"
    layout = obj._layout
    is64 = obj.elf_class == ELFCLASS64
    plt_types = _PLT_RELOCATION_TYPES.get(obj.machine, set())
    free_types = _SYMBOL_FREE_RELOCATION_TYPES.get(obj.machine, set())
    startup: dict[int, int] = {}
    plt: dict[int, int] = {}
    position = 0

    def scan(address_tag: int, size_tag: int, rela: bool, is_plt_table: bool) -> None:
        nonlocal position
        offset = _offset_of(obj, layout.get(address_tag))
        size = layout.get(size_tag, 0)
        if offset is None or size == 0:
            return
        if is64:
            entry_format = order + ("QQq" if rela else "QQ")
        else:
            entry_format = order + ("IIi" if rela else "II")
        entry_size = struct.calcsize(entry_format)
        raw = reader.read(offset, size - size % entry_size)
        for values in struct.iter_unpack(entry_format, raw[: len(raw) - len(raw) % entry_size]):
            info = values[1]
            if is64:
                symbol_index, kind = info >> 32, info & 0xFFFFFFFF
            else:
                symbol_index, kind = info >> 8, info & 0xFF
            position += 1
            if symbol_index == 0 or kind in free_types or symbol_index >= symbol_count:
                continue
            if is_plt_table and kind in plt_types:
                plt.setdefault(symbol_index, position)
            else:
                startup.setdefault(symbol_index, position)

    scan(DT_RELA, DT_RELASZ, True, False)
    scan(DT_REL, DT_RELSZ, False, False)
    scan(DT_JMPREL, DT_PLTRELSZ, layout.get(DT_PLTREL, DT_RELA) == DT_RELA, True)
    return startup, plt


def file_identity(fs: TargetFS, path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file ``path`` resolves to, as glibc compares objects."""
    try:
        info = fs.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino

