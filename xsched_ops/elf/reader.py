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

Everything is decoded with ``struct``: pyelftools' per-symbol iteration costs ~23 us a symbol
(seconds for a ROCm library) and building its header structures ~1 ms a file; pyelftools only
names unusual machines (``machine_name``).
"""

from __future__ import annotations

import operator
import os
import struct
import sys
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import BinaryIO

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

# array typecodes of unsigned 16, 32 and 64-bit words
_U16 = next(code for code in "HIL" if array(code).itemsize == 2)
_U32 = next(code for code in "HIL" if array(code).itemsize == 4)
_U64 = next(code for code in "LQ" if array(code).itemsize == 8)

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


_new_object = object.__new__
_set_attribute = object.__setattr__


def _column(raw: bytes, typecode: str, little_endian: bool, stride: int, offset: int) -> array:
    """One field of a table of fixed-size entries, as an array: field ``offset`` of every ``stride`` words."""
    values = array(typecode)
    values.frombytes(raw[: len(raw) - len(raw) % values.itemsize])
    if little_endian != (sys.byteorder == "little"):
        values.byteswap()
    return values[offset::stride]


class SymbolTable:
    """The decoded dynamic symbol table of one object.

    ``references`` (undefined, non-local, named entries) is decoded when the table is read;
    ``definitions`` (every name with at least one defined entry) and ``symbols`` (every entry)
    are decoded on first use from the table's bytes, kept in memory. ``has_definition`` and
    ``candidates`` answer look-ups from an index of names alone, decoding only the entries a
    look-up needs. A program's table is consulted mostly for its references: a Go program's
    100,000 exported symbols cost nothing until a look-up needs them.
    """

    def __init__(self, bind_now: bool, raw: bytes = b"", entry_format: str = "<IBBHQQ", strings: bytes = b"",
                 versyms: array | None = None, definition_names: dict[int, str] | None = None,
                 need_by_index: dict[int, VersionNeed] | None = None) -> None:
        self.bind_now = bind_now
        # (position, name, version, hidden, version file, at start-up, lazy, first relocation, looked up)
        self._reference_rows: list[tuple] = []
        self._references: list[SymbolReference] | None = []
        self.lookups: list[tuple[tuple[str, str | None, bool], int]] = []
        self._raw = raw
        self._format = entry_format
        self._entry_size = struct.calcsize(entry_format)
        self._is64 = entry_format[1:] == "IBBHQQ"
        self._little = entry_format[0] == "<"
        self.count = len(raw) // self._entry_size
        self._strings = strings
        self._versyms = versyms
        self._definition_names = definition_names or {}
        self._need_by_index = need_by_index or {}
        self._decoded: dict[int, Symbol] = {}
        self._names: tuple[dict[str, int], dict[str, list[int]]] | None = None
        self._definitions: dict[str, list[Symbol]] | None = None
        self._symbols: list[Symbol] | None = None
        self._lock = threading.Lock()
        # Answers callers derive from this table alone, kept as long as it is (the loader model
        # keeps whether a (name, version, hidden) reference is satisfied here).
        self.memo: dict = {}

    def _set_references(self, rows: list[tuple]) -> None:
        self._reference_rows = rows
        self._references = None
        self.lookups = [((row[1], row[2], row[3]), number) for number, row in enumerate(rows) if row[8]]

    @property
    def references(self) -> list[SymbolReference]:
        """The undefined, non-local, named entries, with how the loader binds them (built on first use).

        ``lookups`` holds what a symbol look-up needs of the references the loader looks up at
        all (not weak, used by a relocation): ((name, version, hidden), index in ``references``).
        """
        references = self._references
        if references is None:
            built = []
            for position, _, _, _, version_file, at_startup, lazy, first, _ in self._reference_rows:
                reference = _new_object(SymbolReference)  # without the frozen dataclass's cost
                _set_attribute(reference, "__dict__", {
                    "symbol": self.symbol_at(position), "version_file": version_file, "at_startup": at_startup,
                    "lazy": lazy, "first_relocation": first})
                built.append(reference)
            with self._lock:
                if self._references is None:
                    self._references = built
                references = self._references
        return references

    # -- columns: one field of every entry, without decoding the entries ---------------------------
    def _name_offsets(self) -> array:
        return _column(self._raw, _U32, self._little, 6 if self._is64 else 4, 0)

    def _section_indices(self) -> array:
        return _column(self._raw, _U16, self._little, 12 if self._is64 else 8, 3 if self._is64 else 7)

    def _infos(self) -> bytes:
        return self._raw[4 if self._is64 else 12::self._entry_size]

    def undefined_named(self) -> list[int]:
        """Positions of the undefined, non-local, named entries (the references' symbols)."""
        names = self._name_offsets()
        infos = self._infos()
        strings = self._strings
        return [position for position, shndx in enumerate(self._section_indices())
                if shndx == SHN_UNDEF and position and infos[position] >> 4 != STB_LOCAL
                and strings[names[position]:names[position] + 1] not in (b"\0", b"")]

    def entries(self):
        """(index, name offset, info, other, shndx, value) of every entry, undecoded."""
        unpacked = struct.iter_unpack(self._format, self._raw[: self.count * self._entry_size])
        if self._is64:
            for index, (name_offset, info, other, shndx, value, _) in enumerate(unpacked):
                yield index, name_offset, info, other, shndx, value
        else:
            for index, (name_offset, value, _, info, other, shndx) in enumerate(unpacked):
                yield index, name_offset, info, other, shndx, value

    def symbol_at(self, index: int) -> Symbol:
        """The entry ``index``, decoded (once)."""
        symbol = self._decoded.get(index)
        if symbol is not None:
            return symbol
        values = struct.unpack_from(self._format, self._raw, index * self._entry_size)
        if self._is64:
            name_offset, info, other, shndx, value, _ = values
        else:
            name_offset, value, _, info, other, shndx = values
        return self._decode(index, name_offset, info, other, shndx, value)

    def _decode(self, index: int, name_offset: int, info: int, other: int, shndx: int, value: int) -> Symbol:
        strings = self._strings
        end = strings.find(b"\0", name_offset)
        name = strings[name_offset:end if end >= 0 else None].decode("utf-8", "surrogateescape")
        version: str | None = None
        hidden = False
        version_index = -1
        versyms = self._versyms
        if versyms is not None and index < len(versyms):
            raw_version = versyms[index]
            hidden = bool(raw_version & VERSYM_HIDDEN)
            version_index = raw_version & 0x7FFF
            if version_index > 1:
                if shndx == SHN_UNDEF:
                    need = self._need_by_index.get(version_index)
                    version = need.version if need else None
                else:
                    version = self._definition_names.get(version_index)
        # Symbol(...) without the frozen dataclass's ten object.__setattr__ calls (3x faster)
        symbol = _new_object(Symbol)
        _set_attribute(symbol, "__dict__", {
            "index": index, "name": name, "binding": info >> 4, "type": info & 0xF, "visibility": other & 0x3,
            "section_index": shndx, "value": value, "version": version, "version_hidden": hidden,
            "version_index": version_index})
        self._decoded[index] = symbol
        return symbol

    def _name_index(self) -> tuple[dict[str, int], dict[str, list[int]]]:
        """Defined, named entries by name: the first index, and the further ones (other versions)."""
        index = self._names
        if index is None:
            with self._lock:
                if self._names is None:
                    self._names = self._build_name_index()
                index = self._names
        return index

    def _build_name_index(self) -> tuple[dict[str, int], dict[str, list[int]]]:
        first: dict[str, int] = {}
        more: dict[str, list[int]] = {}
        names = self._name_offsets()
        strings = self._strings
        ascii_text = strings.decode("ascii") if strings.isascii() else None  # one decode, then slices
        for position, shndx in enumerate(self._section_indices()):
            if shndx == SHN_UNDEF or not position:
                continue
            offset = names[position]
            if ascii_text is not None:
                end = ascii_text.find("\0", offset)
                name = ascii_text[offset:end if end >= 0 else None]
            else:
                end = strings.find(b"\0", offset)
                name = strings[offset:end if end >= 0 else None].decode("utf-8", "surrogateescape")
            if not name:
                continue
            if name in first:
                more.setdefault(name, []).append(position)
            else:
                first[name] = position
        return first, more

    def name_index(self) -> dict[str, int]:
        """Every defined name with the position of its first entry (a look-up's quick test: ``name in``)."""
        return self._name_index()[0]

    def has_definition(self, name: str) -> bool:
        """Whether some defined entry is called ``name`` (without decoding the entries)."""
        return name in self._name_index()[0]

    def candidates(self, name: str) -> list[Symbol]:
        """The defined entries called ``name`` (``definitions.get(name, [])``, decoding only those)."""
        first, more = self._name_index()
        position = first.get(name)
        if position is None:
            return []
        found = [self.symbol_at(position)]
        for other in more.get(name, ()):
            found.append(self.symbol_at(other))
        return found

    @property
    def definitions(self) -> dict[str, list[Symbol]]:
        """Every name with at least one defined entry, with those entries (decodes them all)."""
        definitions = self._definitions
        if definitions is None:
            first, more = self._name_index()
            built = {name: [self.symbol_at(position), *(self.symbol_at(p) for p in more.get(name, ()))]
                     for name, position in first.items()}
            with self._lock:
                if self._definitions is None:
                    self._definitions = built
                definitions = self._definitions
        return definitions

    @property
    def symbols(self) -> list[Symbol]:
        symbols = self._symbols
        if symbols is None:
            with self._lock:
                if self._symbols is None:
                    decoded = self._decoded
                    self._symbols = [decoded.get(index) or self._decode(index, *values)
                                     for index, *values in self.entries()]
                symbols = self._symbols
        return symbols

    def defines(self, name: str) -> bool:
        return self.has_definition(name)


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
                    try:
                        self._symbols = _read_symbol_table(self, _RangeReader(stream, self))
                    except _MALFORMED as err:
                        raise _malformed(self.path, err) from err
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
        if offset < 0:
            raise ValueError(f"offset {offset} before the start of the file")  # a damaged table's
        try:
            self.stream.seek(offset)
        except OSError as err:  # an offset no file can have: the caller's _MALFORMED names the file
            raise ValueError(f"offset {offset}: {err.strerror}") from err
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
# short: what reading a damaged or hostile file raises before a check names it.
_MALFORMED = (struct.error, ValueError, OverflowError, MemoryError)


def _malformed(path: str, err: BaseException) -> ElfError:
    return ElfError(f"{path}: malformed ELF file: a header or table lies outside the file or is cut short "
                    f"({type(err).__name__})", "the file is damaged or not an object the loader can map")


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


def _machine_name(machine: int) -> str:
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
    machine_name = _machine_name(machine)

    # Program headers, in one read.
    if elf_class == ELFCLASS64:
        phdr_format = order + "IIQQQQQQ"  # type flags offset vaddr paddr filesz memsz align
    else:
        phdr_format = order + "IIIIIIII"  # type offset vaddr paddr filesz memsz flags align
    phdr_size = struct.calcsize(phdr_format)
    phentsize = e_phentsize or phdr_size
    program_headers = reader.read(e_phoff, phentsize * e_phnum)
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


# Calls of ``_read_symbol_table`` in this process (tests check that a library's table is read once).
SYMBOL_TABLE_READS = 0


def _read_symbol_table(obj: ElfObject, reader: _RangeReader) -> SymbolTable:
    global SYMBOL_TABLE_READS
    SYMBOL_TABLE_READS += 1
    order = "<" if obj.little_endian else ">"
    layout = obj._layout
    symtab = _offset_of(obj, layout.get(DT_SYMTAB))
    strtab = _offset_of(obj, layout.get(DT_STRTAB))
    if symtab is None or strtab is None:
        return SymbolTable(bind_now=obj.bind_now)
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
    versyms: array | None = None
    if versym_offset is not None:
        versyms = _column(reader.read(versym_offset, 2 * count), _U16, obj.little_endian, 1, 0)

    definition_names = {d.index: d.name for d in obj.version_definitions}
    need_by_index = {n.index: n for n in obj.version_needs}
    if entry_size != struct.calcsize(entry_format):
        raise ElfError(f"{obj.path}: unexpected DT_SYMENT {entry_size}")
    table = SymbolTable(bind_now=obj.bind_now, raw=raw[: count * entry_size], entry_format=entry_format,
                        strings=strings, versyms=versyms, definition_names=definition_names,
                        need_by_index=need_by_index)
    # Undefined, non-local, named entries: the references. Only what a look-up needs is decoded
    # now (name, version, how it is bound); Symbol and SymbolReference objects on demand.
    startup_first, plt_only = _relocation_uses(obj, reader, count)
    bind_now = obj.bind_now
    names = table._name_offsets()
    infos = table._infos()
    ascii_text = strings.decode("ascii") if strings.isascii() else None
    versym_count = len(versyms) if versyms is not None else 0
    rows: list[tuple] = []
    for position in table.undefined_named():
        offset = names[position]
        if ascii_text is not None:
            end = ascii_text.find("\0", offset)
            name = ascii_text[offset:end if end >= 0 else None]
        else:
            end = strings.find(b"\0", offset)
            name = strings[offset:end if end >= 0 else None].decode("utf-8", "surrogateescape")
        version = None
        hidden = False
        version_file = None
        if position < versym_count:
            raw_version = versyms[position]  # type: ignore[index]
            hidden = bool(raw_version & VERSYM_HIDDEN)
            version_index = raw_version & 0x7FFF
            if version_index > 1:
                need = need_by_index.get(version_index)
                if need is not None:
                    version, version_file = need.version, need.file
        first = startup_first.get(position, -1)
        in_plt = position in plt_only
        at_startup = first >= 0 or (bind_now and in_plt)
        lazy = in_plt and not at_startup
        if first < 0:
            first = plt_only.get(position, -1) if at_startup else -1
        rows.append((position, name, version, hidden, version_file, at_startup, lazy, first,
                     infos[position] >> 4 != STB_WEAK and (at_startup or lazy)))
    table._set_references(rows)
    return table


def _relocation_uses(obj: ElfObject, reader: _RangeReader, symbol_count: int) -> tuple[dict[int, int], dict[int, int]]:
    """Symbol indices referenced by start-up relocations (first position) and by PLT ones.

    Positions count DT_REL/DT_RELA first, then DT_JMPREL, the order glibc applies them in.
    """
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
        words = 3 if rela else 2  # r_offset, r_info[, r_addend]
        entry_size = (8 if is64 else 4) * words
        raw = reader.read(offset, size - size % entry_size)
        raw = raw[: len(raw) - len(raw) % entry_size]
        if is64:  # r_info = symbol << 32 | type: its two 32-bit halves as columns
            high, low = (3, 2) if obj.little_endian else (2, 3)
            symbols = _column(raw, _U32, obj.little_endian, 2 * words, high)
            kinds: Sequence[int] = _column(raw, _U32, obj.little_endian, 2 * words, low)
        else:  # r_info = symbol << 8 | type
            infos = _column(raw, _U32, obj.little_endian, words, 1)
            symbols = array(_U32, map(operator.rshift, infos, repeat(8)))
            kinds = bytes(map(operator.and_, infos, repeat(0xFF)))
        # Most relocations (RELATIVE) name no symbol: only the others are looked at, one by one.
        for at in compress(range(len(symbols)), symbols):
            symbol_index = symbols[at]
            if symbol_index >= symbol_count:
                continue
            kind = kinds[at]
            if kind in free_types:
                continue
            if is_plt_table and kind in plt_types:
                if symbol_index not in plt:
                    plt[symbol_index] = position + at + 1
            elif symbol_index not in startup:
                startup[symbol_index] = position + at + 1
        position += len(symbols)

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

