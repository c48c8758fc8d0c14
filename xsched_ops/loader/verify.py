"""The loader's verdict on one file it tries: glibc 2.36's ``open_verify`` and the checks of
``_dl_map_object_from_fd`` (``elf/dl-load.c``), and what mapping a truncated file does.

Every message is glibc's own text. What the loader does with each verdict:

* the file cannot be opened: ENOENT and EACCES go on to the next place; any other errno
  (ELOOP: a symbolic-link loop) ends the current path list (``open_path`` returns) and the
  search goes on with the next step; the last errno is the one the final message names;
* wrong ELF class or wrong machine: skipped, the search goes on ("wrong ELF class: ELFCLASS32"
  at the end when only a file of the other class was found);
* anything else wrong with the file (too short, cut before its program headers, another byte
  order, OS ABI, version, type, a directory): the loader stops there and names the file;
* a file cut after its program headers is mapped (``mmap`` does not check the file's length):
  the process dies of SIGBUS, without a message, when the loader touches a page that lies past
  the end of the file (the dynamic section, the zero-filled tail of a writable segment's last
  page, the tables the dynamic section names). Bytes past the end in the file's last page read
  as zeros.
"""

from __future__ import annotations

import errno as errno_module
import stat as stat_module
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xsched_ops.elf.constants import (
    DT_GNU_HASH,
    DT_HASH,
    DT_INIT_ARRAY,
    DT_INIT_ARRAYSZ,
    DT_JMPREL,
    DT_PLTRELSZ,
    DT_REL,
    DT_RELA,
    DT_RELASZ,
    DT_RELSZ,
    DT_STRTAB,
    DT_SYMTAB,
    DT_VERDEF,
    DT_VERNEED,
    DT_VERSYM,
    ET_DYN,
    ET_EXEC,
    PF_W,
)
from xsched_ops.elf.ranges import offset_of
from xsched_ops.elf.reader import ElfObject, machine_name
from xsched_ops.errors import ElfError, TargetPathError
from xsched_ops.loader.platform import LoaderPlatform

if TYPE_CHECKING:
    from xsched_ops.loader.session import LoaderSession

PAGE_SIZE = 4096
_EHDR_SIZE = {1: 52, 2: 64}
_PHDR_SIZE = {1: 32, 2: 56}
_ELFOSABI_SYSV, _ELFOSABI_GNU = 0, 3
_LIBC_ABI_MAX = 4  # glibc 2.36 on x86-64: GNU ABI versions 0-3 are accepted
# The dynamic linker's own strerror (elf/dl-minimal.c) knows a handful of errno values by name.
_LOADER_ERRNO_TEXT = {
    errno_module.ENOMEM: "Cannot allocate memory", errno_module.EINVAL: "Invalid argument",
    errno_module.ENOENT: "No such file or directory", errno_module.EPERM: "Operation not permitted",
    errno_module.EIO: "Input/output error", errno_module.EACCES: "Permission denied",
}


def loader_errno_text(code: int) -> str:
    """How the dynamic linker prints an errno ("Error 40" for ELOOP: it has no table for the rest)."""
    return _LOADER_ERRNO_TEXT.get(code, f"Error {code}")


@dataclass(frozen=True)
class Verdict:
    """What the loader makes of one path."""

    outcome: str  # the search step's outcome: "found", "absent", "skipped: ...", "error: ...", "killed: ..."
    elf: ElfObject | None = None
    error: str | None = None  # glibc's text when the loader stops on this file ("cannot read file data")
    errno_text: str | None = None  # the errno glibc appends to it, or the errno an open failed with
    ends_step: bool = False  # the loader gives up on the rest of the current path list
    other_class: bool = False  # an object of the other ELF class (glibc's ``found_other_class``)
    signal: str | None = None  # "SIGBUS": the loader maps the file and the process dies

    @property
    def usable(self) -> bool:
        return self.elf is not None

    @property
    def stops(self) -> bool:
        """The loader stops the whole load on this file (a fatal error, or the process dies)."""
        return self.error is not None


ABSENT = Verdict("absent", errno_text=loader_errno_text(errno_module.ENOENT))


def _error(text: str, errno_text: str | None = None) -> Verdict:
    shown = f"{text}: {errno_text}" if errno_text else text
    return Verdict(f"error: {shown}", error=text, errno_text=errno_text)


def verify(session: LoaderSession, path: str, platform: LoaderPlatform, elf: ElfObject | None = None) -> Verdict:
    """The loader's verdict on ``path`` (a path in the target); ``elf``: the file, when already read."""
    info = session.stat(path)
    if info is None:
        return _cannot_open(session.stat_errno(path) or errno_module.ENOENT)
    if stat_module.S_ISDIR(info.st_mode):  # open succeeds, the first read fails with EISDIR
        return _error("cannot read file data", loader_errno_text(errno_module.EISDIR))
    failure: ElfError | None = None
    try:
        elf = elf or session.read_elf(path)
        head = elf.header
    except ElfError as err:
        failure = err
        try:
            with session.fs.open(path) as stream:
                head = stream.read(64)
        except OSError as open_error:
            return _cannot_open(open_error.errno or errno_module.ENOENT)
    except TargetPathError as err:
        cause = err.__cause__
        return _cannot_open(cause.errno if isinstance(cause, OSError) and cause.errno else errno_module.ENOENT)
    verdict = header_verdict(head, info.st_size, platform)
    if verdict is not None:
        return verdict
    if elf is None:  # the header is fine but a table is not: the reader's words
        reason = failure.message.split(": ", 1)[-1].split(" (")[0] if failure else "unreadable"
        return _error(reason)
    verdict = mapping_verdict(elf, info.st_size)
    return verdict if verdict is not None else Verdict("found", elf)


def _cannot_open(code: int) -> Verdict:
    text = loader_errno_text(code)
    if code == errno_module.ENOENT:
        return ABSENT
    if code == errno_module.EACCES:
        return Verdict(f"skipped: cannot open ({text})", errno_text=text)
    return Verdict(f"skipped: cannot open ({text}); the loader gives up on the rest of this step",
                   errno_text=text, ends_step=True)


def header_verdict(head: bytes, file_size: int, platform: LoaderPlatform) -> Verdict | None:
    """``open_verify``'s checks of the ELF header and the program header table, in its order;
    None when the file passes them."""
    own_class = platform.elf_class
    if len(head) < _EHDR_SIZE[own_class]:
        return _error("file too short")
    if head[:4] != b"\x7fELF":
        return _error("invalid ELF header")
    if head[4] != own_class:
        name = {1: "ELFCLASS32", 2: "ELFCLASS64"}.get(head[4], f"ELF class {head[4]}")
        return Verdict(f"skipped: wrong ELF class ({name})", other_class=True)
    if head[5] != 1:  # the x86-64 loader is little-endian
        return _error("ELF file data encoding not little-endian")
    if head[6] != 1:
        return _error("ELF file version ident does not match current one")
    osabi, abi_version = head[7], head[8]
    if osabi not in (_ELFOSABI_SYSV, _ELFOSABI_GNU):
        return _error("ELF file OS ABI invalid")
    if not (abi_version == 0 or (osabi == _ELFOSABI_GNU and abi_version < _LIBC_ABI_MAX)):
        return _error("ELF file ABI version invalid")
    if any(head[9:16]):
        return _error("nonzero padding in e_ident")
    fields = "<HHIQQQIHHHHHH" if own_class == 2 else "<HHIIIIIHHHHHH"
    e_type, e_machine, e_version, _, e_phoff, _, _, _, e_phentsize, e_phnum, _, _, _ = struct.unpack_from(
        fields, head, 16)
    if e_version != 1:
        return _error("ELF file version does not match current one")
    if e_machine != platform.machine:
        return Verdict(f"skipped: wrong machine ({machine_name(e_machine)})")
    if e_type not in (ET_DYN, ET_EXEC):
        return _error("only ET_DYN and ET_EXEC can be loaded")
    if e_phentsize != _PHDR_SIZE[own_class]:
        return _error("ELF file's phentsize not the expected size")
    if e_phoff + e_phnum * e_phentsize > file_size:  # the pread of the table comes back short
        return _error("cannot read file data")
    return None


def mapping_verdict(elf: ElfObject, file_size: int) -> Verdict | None:
    """``_dl_map_object_from_fd``'s checks, then whether mapping and reading the dynamic section
    and its tables touches a page past the end of the file (SIGBUS); None when neither."""
    if not elf.segments:
        return _error("object file has no loadable segments")
    if elf.dynamic_segment is None and elf.elf_type == ET_DYN:
        return _error("object file has no dynamic section")
    fault = sigbus_cause(elf, file_size)
    if fault is None:
        return None
    return Verdict(f"killed: SIGBUS: {fault}", error=f"SIGBUS: {fault}", signal="SIGBUS")


def fatal_line(shown: str, message: str) -> str:
    """The first line the real loader prints when it stops on ``shown`` (without "PROGRAM: "), or,
    for a process killed while the loader maps a file, what happens (the loader prints nothing)."""
    if message.startswith("SIGBUS: "):
        return f"killed by SIGBUS while loading {shown} (the loader prints nothing): {message[8:]}"
    return f"error while loading shared libraries: {shown}: {message}"


def sigbus_cause(elf: ElfObject, file_size: int) -> str | None:
    """Why mapping ``elf`` touches a page past the end of the file, or None."""
    if max(segment.offset + segment.file_size for segment in elf.segments) <= file_size:
        return None  # everything mapped from the file is in it (the usual case, decided at once)
    backed_end = -(-file_size // PAGE_SIZE) * PAGE_SIZE  # pages past this offset are not backed
    ends = f"the file ends at byte {file_size} (its last page ends at {backed_end})"
    for segment in elf.segments:  # mapping: the rest of a writable segment's last page is cleared
        zero_start = segment.vaddr + segment.file_size
        if segment.flags & PF_W and segment.memory_size > segment.file_size and zero_start % PAGE_SIZE:
            page = (segment.offset + segment.file_size) // PAGE_SIZE * PAGE_SIZE
            if page >= backed_end:
                return f"{ends}; the loader zero-fills the rest of a writable segment's last page, at byte {page}"
    if elf.dynamic_segment is not None and not elf.dynamic_terminated:
        next_entry = elf.dynamic_segment[0] + elf.dynamic_entries * (16 if elf.elf_class == 2 else 8)
        if next_entry >= backed_end:
            return f"{ends}; the loader reads the dynamic section at byte {next_entry}"
    layout = elf._layout
    for tag, size_tag, what in _TOUCHED_TABLES:
        start = offset_of(elf, layout.get(tag))
        if start is None:
            continue
        size = layout.get(size_tag, 1) if size_tag else 1
        if start + max(size, 1) > backed_end:
            return f"{ends}; the loader reads {what}, bytes {start} to {start + max(size, 1)}"
    return None


# The tables the loader reads while it loads an object (the whole relocation tables and the
# init array; the first entry of the others).
_TOUCHED_TABLES = (
    (DT_STRTAB, None, "the dynamic string table"), (DT_SYMTAB, None, "the dynamic symbol table"),
    (DT_HASH, None, "the symbol hash table"), (DT_GNU_HASH, None, "the GNU symbol hash table"),
    (DT_VERSYM, None, "the symbol versions"), (DT_VERNEED, None, "the version needs"),
    (DT_VERDEF, None, "the version definitions"), (DT_RELA, DT_RELASZ, "the relocations"),
    (DT_REL, DT_RELSZ, "the relocations"), (DT_JMPREL, DT_PLTRELSZ, "the PLT relocations"),
    (DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "the init array"),
)
