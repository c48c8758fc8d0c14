"""The dynamic symbol table of one object, decoded lazily (``SymbolTable``), and the version
records it refers to. Built by ``xsched_ops.elf.dynsym`` from the file's bytes."""

from __future__ import annotations

import struct
import sys
import threading
from array import array
from dataclasses import dataclass

from xsched_ops.elf.constants import (
    BINDING_NAMES,
    SHN_UNDEF,
    STB_LOCAL,
    TYPE_NAMES,
    VERSYM_HIDDEN,
    VISIBILITY_NAMES,
)
from xsched_ops.elf.ranges import c_string_at, name_reader

# array typecodes of unsigned 16, 32 and 64-bit words
U16 = next(code for code in "HIL" if array(code).itemsize == 2)
U32 = next(code for code in "HIL" if array(code).itemsize == 4)
U64 = next(code for code in "LQ" if array(code).itemsize == 8)


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


def column(raw: bytes, typecode: str, little_endian: bool, stride: int, offset: int) -> array:
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
        return column(self._raw, U32, self._little, 6 if self._is64 else 4, 0)

    def _section_indices(self) -> array:
        return column(self._raw, U16, self._little, 12 if self._is64 else 8, 3 if self._is64 else 7)

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
        name = c_string_at(self._strings, name_offset)
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
        name_at = name_reader(self._strings)
        for position, shndx in enumerate(self._section_indices()):
            if shndx == SHN_UNDEF or not position:
                continue
            name = name_at(names[position])
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

