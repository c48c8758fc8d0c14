"""Byte ranges of an ELF file: a counting reader, virtual addresses mapped to file offsets, and
what reading a damaged file raises."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from xsched_ops.errors import ElfError

if TYPE_CHECKING:
    from xsched_ops.elf.reader import ElfObject

_STRING_CHUNK = 256


def c_string_at(data: bytes, offset: int) -> str:
    """The NUL-terminated name at ``offset`` of a string table (to its end when no NUL follows);
    bytes that are not UTF-8 are kept (surrogateescape), as the loader compares bytes."""
    end = data.find(b"\0", offset)
    return data[offset:end if end >= 0 else None].decode("utf-8", "surrogateescape")


def name_reader(strings: bytes) -> Callable[[int], str]:
    """``c_string_at`` over one string table, for many names: an ASCII table (nearly all are) is
    decoded once and sliced, which is what makes reading every symbol of a large library cheap."""
    if not strings.isascii():
        return lambda offset: c_string_at(strings, offset)
    text = strings.decode("ascii")
    find = text.find

    def read(offset: int) -> str:
        end = find("\0", offset)
        return text[offset:end if end >= 0 else None]

    return read


class RangeReader:
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


def offset_of(obj: ElfObject, address: int | None) -> int | None:
    """File offset of a virtual address, through the PT_LOAD segments."""
    if address is None:
        return None
    for vaddr, offset, filesz in obj._load_segments:
        if vaddr <= address < vaddr + filesz:
            return address - vaddr + offset
    return None


# A header or table that points outside the file, or beyond any offset (e_phoff = 2**63), or is cut
# short: what reading a damaged or hostile file raises before a check names it.
MALFORMED = (struct.error, ValueError, OverflowError, MemoryError)


def malformed(path: str, err: BaseException) -> ElfError:
    return ElfError(f"{path}: malformed ELF file: a header or table lies outside the file or is cut short "
                    f"({type(err).__name__})", "the file is damaged or not an object the loader can map")
