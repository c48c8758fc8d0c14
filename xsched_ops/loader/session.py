"""What a batch of analyses in one target shares: the file system's answers and the ld.so.cache."""

from __future__ import annotations

import functools
import os
import posixpath
import stat as stat_module
from typing import TYPE_CHECKING

from xsched_ops.elf import ElfObject, LdCache, read_elf, read_ld_so_cache, required_cache_flags
from xsched_ops.environment.loader_vars import split_ld_so_preload
from xsched_ops.errors import TargetPathError
from xsched_ops.loader.platform import LoaderPlatform, detect_platform
from xsched_ops.target.fs import TargetFS

if TYPE_CHECKING:
    from xsched_ops.loader.verify import Verdict


@functools.lru_cache(maxsize=1)
def _this_cpu_platform() -> LoaderPlatform:
    return detect_platform()  # /proc/cpuinfo does not change while the process runs


class LoaderSession:
    """What a batch of analyses in one target shares (``analyze_many``; a model without one gets
    its own, so that one analysis asks each question once).

    The platform, the ld.so.cache (parsed once per process anyway, see ``read_ld_so_cache``),
    and the file system's answers: ``stat``, ``realpath``, glibc's ``open_verify`` outcome for
    each path, the hwcaps subfolders of each folder and /etc/ld.so.preload. The target's files
    are taken as unchanging while the batch runs.
    """

    def __init__(self, fs: TargetFS, platform: LoaderPlatform | None = None, cache: LdCache | None = None) -> None:
        self.fs = fs
        self.platform = platform or _this_cpu_platform()
        self.cache = cache if cache is not None else read_ld_so_cache(fs)
        self.cache_flags = required_cache_flags(self.platform.machine, self.platform.elf_class)
        self._stat: dict[str, os.stat_result | None] = {}
        self._stat_errno: dict[str, int] = {}
        self._realpath: dict[str, str] = {}
        self.verified: dict[str, Verdict] = {}
        self.subdirs: dict[str, tuple[str, ...]] = {}
        self._ld_so_preload: list[str] | None = None

    def stat(self, path: str) -> os.stat_result | None:
        try:
            return self._stat[path]
        except KeyError:
            pass
        try:
            info: os.stat_result | None = self.fs.stat(path)
        except OSError as err:
            info = None
            self._stat_errno[path] = err.errno or 0
        self._stat[path] = info
        return info

    def stat_errno(self, path: str) -> int:
        """The errno of a ``stat`` that failed (ENOENT, ELOOP, ENOTDIR...); 0 when it did not fail."""
        return self._stat_errno.get(path, 0)

    def realpath(self, path: str) -> str:
        resolved = self._realpath.get(path)
        if resolved is None:
            resolved = self._realpath[path] = self.fs.realpath(path)
        return resolved

    def identity(self, path: str) -> tuple[int, int] | None:
        info = self.stat(path)
        return (info.st_dev, info.st_ino) if info is not None else None

    def isdir(self, path: str) -> bool:
        info = self.stat(path)
        return info is not None and stat_module.S_ISDIR(info.st_mode)

    def isfile(self, path: str) -> bool:
        info = self.stat(path)
        return info is not None and stat_module.S_ISREG(info.st_mode)

    def existing_subdirs(self, folder: str, platform: LoaderPlatform, known: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        """Hwcaps subfolders of ``folder`` that exist (glibc skips the others without a trace), kept in ``known``."""
        cached = known.get(folder)
        if cached is None:
            firsts: dict[str, bool] = {}
            found = []
            for sub in platform.subdirectories():
                first = sub.split("/", 1)[0]
                if first not in firsts:
                    firsts[first] = self.isdir(posixpath.join(folder, first))
                if firsts[first] and self.isdir(posixpath.join(folder, sub)):
                    found.append(sub)
            cached = known[folder] = tuple(found)
        return cached

    def read_elf(self, path: str) -> ElfObject:
        """``read_elf`` with the session's ``stat`` (TargetPathError when the path is absent)."""
        info = self.stat(path)
        if info is None:
            raise TargetPathError(f"{path}: no such file", "check the path in the target")
        return read_elf(self.fs, path, info)

    def ld_so_preload(self) -> list[str]:
        if self._ld_so_preload is None:
            self._ld_so_preload = _read_ld_so_preload(self.fs)
        return list(self._ld_so_preload)



def _read_ld_so_preload(fs: TargetFS) -> list[str]:
    """/etc/ld.so.preload's entries (glibc splits the file on spaces, tabs, newlines and colons)."""
    try:
        with fs.open("/etc/ld.so.preload") as stream:
            text = stream.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return []
    return split_ld_so_preload(text)
