"""Parsers for ``/etc/ld.so.cache`` and ``/etc/ld.so.conf`` as glibc 2.36 reads them.

The cache is what ``ldconfig`` wrote last, which can be stale against ``ld.so.conf`` and the
folders themselves: the loader trusts the cache file, so the model reads it, not the config.

Formats (glibc ``sysdeps/generic/dl-cache.h``):

* new: magic ``glibc-ld.so.cache`` + version ``1.1``; entries of 24 bytes (flags, key, value,
  osversion, hwcap); string offsets are relative to the start of the new header. glibc >= 2.32
  writes only this format; 2.33+ adds an extension section whose hwcaps entries mark libraries in
  ``glibc-hwcaps/<name>`` subfolders (bit 62 of ``hwcap``, ``DL_CACHE_HWCAP_EXTENSION``).
* old: magic ``ld.so-1.7.0``; entries of 12 bytes; glibc < 2.32 wrote the old format followed
  by the new one (aligned), and the loader uses the new part when present.
"""

from __future__ import annotations

import glob
import posixpath
import struct
import threading
from dataclasses import dataclass, field

from xsched_ops.elf.ranges import c_string_at
from xsched_ops.target.fs import TargetFS

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"

FLAG_TYPE_MASK = 0x00FF
FLAG_ELF_LIBC6 = 0x0003
FLAG_REQUIRED_MASK = 0xFF00
FLAG_X8664_LIB64 = 0x0300
FLAG_I386_LIB32 = 0x0800  # not a real glibc flag name; i386 entries carry no requirement bits
FLAG_AARCH64_LIB64 = 0x0A00

# glibc marks entries of glibc-hwcaps subfolders by this bit of the hwcap field (dl-cache.h:
# DL_CACHE_HWCAP_EXTENSION); the low 32 bits then index the extension's hwcaps strings.
DL_CACHE_HWCAP_EXTENSION = 1 << 62
DL_CACHE_HWCAP_ISA_LEVEL_MASK = 0x3FF  # bits of the low word glibc 2.33+ may use for the ISA level

EXTENSION_MAGIC = 0xEAA42174
EXTENSION_TAG_GENERATOR = 1
EXTENSION_TAG_GLIBC_HWCAPS = 2


@dataclass(frozen=True)
class CacheEntry:
    name: str  # the key: a soname
    path: str
    flags: int
    hwcap: int
    hwcaps_subdir: str | None  # "x86-64-v3" for a glibc-hwcaps entry


@dataclass(frozen=True)
class LdCache:
    path: str
    format: str  # "new", "old+new", "old", or "absent"
    entries: tuple[CacheEntry, ...]
    # name -> its entries in file order, built on the first lookup
    _by_name: dict[str, list[CacheEntry]] | None = field(default=None, compare=False, repr=False)

    def lookup(self, name: str, required_flags: int, supported_hwcaps: tuple[str, ...]) -> CacheEntry | None:
        """The entry glibc's ``_dl_load_cache_lookup`` returns for ``name``.

        Entries for the wrong architecture are skipped. Among glibc-hwcaps entries the one with
        the most preferred supported subfolder wins; otherwise the first plain entry does.
        """
        by_name = self._by_name
        if by_name is None:
            by_name = {}
            for entry in self.entries:
                by_name.setdefault(entry.name, []).append(entry)
            object.__setattr__(self, "_by_name", by_name)  # a cache, not state: the entries do not change
        best: CacheEntry | None = None
        best_priority = len(supported_hwcaps) + 1
        for entry in by_name.get(name, ()):
            if entry.flags & FLAG_TYPE_MASK != FLAG_ELF_LIBC6:
                continue
            if entry.flags & FLAG_REQUIRED_MASK != required_flags:
                continue
            if entry.hwcaps_subdir is not None:
                if entry.hwcaps_subdir not in supported_hwcaps:
                    continue
                priority = supported_hwcaps.index(entry.hwcaps_subdir)
            else:
                priority = len(supported_hwcaps)
            if priority < best_priority:
                best, best_priority = entry, priority
        return best


def required_cache_flags(machine: int, elf_class: int) -> int:
    """The ``FLAG_*`` requirement bits an entry needs for this machine (glibc ``_DL_CACHE_DEFAULT_ID``)."""
    if machine == 62 and elf_class == 2:
        return FLAG_X8664_LIB64
    if machine == 183:
        return FLAG_AARCH64_LIB64
    return 0


_string_at = c_string_at  # the cache's strings are NUL-terminated as a string table's


def parse_ld_so_cache(data: bytes, path: str = "/etc/ld.so.cache") -> LdCache:
    """Parse the bytes of an ld.so.cache file (any of the three layouts)."""
    if data.startswith(NEW_MAGIC):
        return LdCache(path, "new", _parse_new(data, 0))
    if data.startswith(OLD_MAGIC):
        (count,) = struct.unpack_from("<I", data, 12)
        old_end = 16 + 12 * count
        new_start = (old_end + 7) & ~7  # the new header follows, aligned
        if data[new_start:new_start + len(NEW_MAGIC)] == NEW_MAGIC:
            return LdCache(path, "old+new", _parse_new(data, new_start))
        entries = []
        for i in range(count):
            flags, key, value = struct.unpack_from("<iII", data, 16 + 12 * i)
            # Old-format string offsets are relative to the end of the entry table.
            entries.append(CacheEntry(_string_at(data, old_end + key), _string_at(data, old_end + value),
                                      flags, 0, None))
        return LdCache(path, "old", tuple(entries))
    return LdCache(path, "unknown", ())


def _parse_new(data: bytes, start: int) -> tuple[CacheEntry, ...]:
    count, _strings_length, _flags, extension_offset = struct.unpack_from("<IIB3xI", data, start + 20)
    header_size = 48
    hwcaps_names = _parse_hwcaps_extension(data, start, extension_offset) if extension_offset else []
    entries = []
    for i in range(count):
        flags, key, value, _osversion, hwcap = struct.unpack_from("<iIIIQ", data, start + header_size + 24 * i)
        subdir = None
        if hwcap & DL_CACHE_HWCAP_EXTENSION:
            index = hwcap & 0xFFFFFFFF
            subdir = hwcaps_names[index] if index < len(hwcaps_names) else f"#{index}"
        entries.append(CacheEntry(_string_at(data, start + key), _string_at(data, start + value), flags, hwcap, subdir))
    return tuple(entries)


def _parse_hwcaps_extension(data: bytes, start: int, extension_offset: int) -> list[str]:
    base = start + extension_offset
    if len(data) < base + 8:
        return []
    magic, count = struct.unpack_from("<II", data, base)
    if magic != EXTENSION_MAGIC:
        return []
    for i in range(count):
        tag, _flags, offset, size = struct.unpack_from("<IIII", data, base + 8 + 16 * i)
        if tag != EXTENSION_TAG_GLIBC_HWCAPS:
            continue
        # An array of uint32 string offsets (relative to the cache start).
        string_offsets = struct.unpack_from(f"<{size // 4}I", data, start + offset)
        return [_string_at(data, start + o) for o in string_offsets]
    return []


# Parsed caches by (path, st_dev, st_ino, st_size, st_mtime_ns) of the file: one parse per file
# version per process, however many programs are analysed. ldconfig replaces the file by a
# rename, so a new cache has a new inode (and mtime) and is parsed again.
_PARSED: dict[tuple[str, int, int, int, int], LdCache] = {}
_PARSED_LOCK = threading.Lock()
_PARSED_LIMIT = 16  # distinct cache files kept (several containers, several versions)


def clear_parsed_caches() -> None:
    """Forget every parsed cache (``xsched_ops.elf.clear_cache`` calls this too)."""
    with _PARSED_LOCK:
        _PARSED.clear()


def read_ld_so_cache(fs: TargetFS, path: str = "/etc/ld.so.cache") -> LdCache:
    """The target's cache, or an empty one (format ``absent``) when it has none.

    Parsed once per version of the file (its identity, size and mtime) per process: the result
    is immutable and shared by every caller.
    """
    try:
        info = fs.stat(path)
        key = (path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    except OSError:
        return LdCache(path, "absent", ())
    with _PARSED_LOCK:
        cached = _PARSED.get(key)
    if cached is not None:
        return cached
    try:
        with fs.open(path) as stream:
            data = stream.read()  # a few hundred KiB at most
    except OSError:
        return LdCache(path, "absent", ())
    parsed = parse_ld_so_cache(data, path)
    with _PARSED_LOCK:
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = parsed
    return parsed


def read_ld_so_conf(fs: TargetFS, path: str = "/etc/ld.so.conf") -> list[str]:
    """Folders listed by ld.so.conf, following ``include`` globs (resolved in the target).

    Relative include patterns are relative to the including file's folder, as ldconfig does.
    ``hwcap`` lines (obsolete) are ignored.
    """
    folders: list[str] = []
    seen_files: set[str] = set()

    def read_file(conf_path: str) -> None:
        if conf_path in seen_files:
            return
        seen_files.add(conf_path)
        try:
            with fs.open(conf_path) as stream:
                text = stream.read().decode("utf-8", "replace")
        except OSError:
            return
        for raw_line in text.splitlines():
            line = raw_line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include") and line[7:8] in (" ", "\t"):
                for pattern in line[8:].split():
                    if not pattern.startswith("/"):
                        pattern = posixpath.join(posixpath.dirname(conf_path), pattern)
                    for match in _glob_in_target(fs, pattern):
                        read_file(match)
                continue
            if line.startswith("hwcap") and line[5:6] in (" ", "\t"):
                continue
            for folder in line.replace(",", " ").replace(":", " ").split():
                folder = folder.split("=", 1)[0]  # old "dir=TYPE" syntax
                if folder not in folders:
                    folders.append(folder)

    read_file(path)
    return folders


def _glob_in_target(fs: TargetFS, pattern: str) -> list[str]:
    """Expand a glob whose wildcards are only in its last component, inside the target."""
    folder, file_pattern = posixpath.split(pattern)
    if not glob.has_magic(file_pattern):
        return [pattern] if fs.isfile(pattern) else []
    try:
        names = fs.listdir(folder)
    except OSError:
        return []
    import fnmatch

    return [posixpath.join(folder, name) for name in sorted(names)
            if fnmatch.fnmatchcase(name, file_pattern) and not name.startswith(".")]
