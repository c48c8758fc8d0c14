"""Reading an object's dynamic symbol table and the relocations that use it, in bulk
(``struct.iter_unpack`` and array columns, not one call per symbol)."""

from __future__ import annotations

import operator
import struct
from array import array
from collections.abc import Sequence
from itertools import compress, repeat
from typing import TYPE_CHECKING

from xsched_ops.elf.constants import (
    DT_GNU_HASH,
    DT_HASH,
    DT_JMPREL,
    DT_PLTREL,
    DT_PLTRELSZ,
    DT_REL,
    DT_RELA,
    DT_RELASZ,
    DT_RELSZ,
    DT_STRSZ,
    DT_STRTAB,
    DT_SYMENT,
    DT_SYMTAB,
    DT_VERSYM,
    ELFCLASS64,
    PLT_RELOCATION_TYPES,
    STB_WEAK,
    SYMBOL_FREE_RELOCATION_TYPES,
    VERSYM_HIDDEN,
)
from xsched_ops.elf.ranges import RangeReader, name_reader, offset_of
from xsched_ops.elf.symtab import U16, U32, SymbolTable, column
from xsched_ops.errors import ElfError

if TYPE_CHECKING:
    from xsched_ops.elf.reader import ElfObject


def _symbol_count(obj: ElfObject, reader: RangeReader) -> int:
    """Number of dynamic symbols, from DT_HASH's nchain or by walking DT_GNU_HASH."""
    order = "<" if obj.little_endian else ">"
    layout = obj._layout
    hash_offset = offset_of(obj, layout.get(DT_HASH))
    if hash_offset is not None:
        return struct.unpack(order + "II", reader.read(hash_offset, 8))[1]
    gnu_offset = offset_of(obj, layout.get(DT_GNU_HASH))
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


def read_symbol_table(obj: ElfObject, reader: RangeReader) -> SymbolTable:
    global SYMBOL_TABLE_READS
    SYMBOL_TABLE_READS += 1
    order = "<" if obj.little_endian else ">"
    layout = obj._layout
    symtab = offset_of(obj, layout.get(DT_SYMTAB))
    strtab = offset_of(obj, layout.get(DT_STRTAB))
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
    versym_offset = offset_of(obj, layout.get(DT_VERSYM))
    versyms: array | None = None
    if versym_offset is not None:
        versyms = column(reader.read(versym_offset, 2 * count), U16, obj.little_endian, 1, 0)

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
    name_at = name_reader(strings)
    versym_count = len(versyms) if versyms is not None else 0
    rows: list[tuple] = []
    for position in table.undefined_named():
        name = name_at(names[position])
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


def _relocation_uses(obj: ElfObject, reader: RangeReader, symbol_count: int) -> tuple[dict[int, int], dict[int, int]]:
    """Symbol indices referenced by start-up relocations (first position) and by PLT ones.

    Positions count DT_REL/DT_RELA first, then DT_JMPREL, the order glibc applies them in.
    """
    layout = obj._layout
    is64 = obj.elf_class == ELFCLASS64
    plt_types = PLT_RELOCATION_TYPES.get(obj.machine, set())
    free_types = SYMBOL_FREE_RELOCATION_TYPES.get(obj.machine, set())
    startup: dict[int, int] = {}
    plt: dict[int, int] = {}
    position = 0

    def scan(address_tag: int, size_tag: int, rela: bool, is_plt_table: bool) -> None:
        nonlocal position
        offset = offset_of(obj, layout.get(address_tag))
        size = layout.get(size_tag, 0)
        if offset is None or size == 0:
            return
        words = 3 if rela else 2  # r_offset, r_info[, r_addend]
        entry_size = (8 if is64 else 4) * words
        raw = reader.read(offset, size - size % entry_size)
        raw = raw[: len(raw) - len(raw) % entry_size]
        if is64:  # r_info = symbol << 32 | type: its two 32-bit halves as columns
            high, low = (3, 2) if obj.little_endian else (2, 3)
            symbols = column(raw, U32, obj.little_endian, 2 * words, high)
            kinds: Sequence[int] = column(raw, U32, obj.little_endian, 2 * words, low)
        else:  # r_info = symbol << 8 | type
            infos = column(raw, U32, obj.little_endian, words, 1)
            symbols = array(U32, map(operator.rshift, infos, repeat(8)))
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
