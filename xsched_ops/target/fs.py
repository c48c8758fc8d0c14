"""Read-only access to a target's file system from the host, without copying whole files.

The ELF reader and the loader model work on paths *as the target sees them* (``/usr/lib/...``
inside the container). ``TargetFS`` maps such a path to something the host can open:

* ``HostFS`` for this host: paths are host paths.
* ``RootedFS`` for a container whose root file system the host can reach (the engine runs on
  this machine and we are root: ``/proc/<pid>/root``). Symbolic links are resolved component
  by component *inside* the root, so an absolute link such as ``libamdhip64.so ->
  /data/.../libshimhip.so`` never escapes to the host's own files.

Only the byte ranges a reader asks for are read: ROCm libraries reach gigabytes.
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_module
from collections.abc import Callable
from typing import BinaryIO, Protocol, TypeVar

T = TypeVar("T")

_MAX_SYMLINK_HOPS = 40  # the kernel's own limit (ELOOP)


class TargetFS(Protocol):
    """Path operations on the target's file system; every path is absolute in the target."""

    def realpath(self, path: str) -> str: ...

    def open(self, path: str) -> BinaryIO: ...

    def stat(self, path: str) -> os.stat_result: ...

    def lstat(self, path: str) -> os.stat_result: ...

    def exists(self, path: str) -> bool: ...

    def isfile(self, path: str) -> bool: ...

    def isdir(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]: ...

    def readlink(self, path: str) -> str: ...


class RootedFS:
    """A file system below ``root`` on the host, with symbolic links resolved inside it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    # -- path mapping -------------------------------------------------------------------------
    def _host(self, target_path: str) -> str:
        if self.root == "/":
            return target_path
        return self.root + target_path if target_path != "/" else self.root

    def realpath(self, path: str) -> str:
        """Resolve every symbolic link of ``path`` within the root, like realpath(3) inside it.

        A missing component ends the resolution: the rest is appended unchanged (as
        ``os.path.realpath`` does in non-strict mode).
        """
        if not path.startswith("/"):
            raise ValueError(f"target paths must be absolute: {path!r}")
        pending = [part for part in path.split("/") if part]
        pending.reverse()
        resolved = "/"
        hops = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                resolved = posixpath.dirname(resolved) or "/"
                continue
            candidate = posixpath.join(resolved, part)
            try:
                info = os.lstat(self._host(candidate))
            except OSError:
                self._on_missing()
                # Missing: keep the remaining components as they are.
                rest = [candidate] + list(reversed(pending))
                return posixpath.normpath("/".join(rest))
            if stat_module.S_ISLNK(info.st_mode):
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise OSError(40, "Too many levels of symbolic links", path)
                link = os.readlink(self._host(candidate))
                if link.startswith("/"):
                    resolved = "/"
                link_parts = [p for p in link.split("/") if p]
                pending.extend(reversed(link_parts))
                continue
            resolved = candidate
        return resolved

    def _on_missing(self) -> None:
        """Called when a path is not there, before that is answered (see ``ProcessRootFS``)."""

    # -- operations ---------------------------------------------------------------------------
    def open(self, path: str) -> BinaryIO:
        return open(self._host(self.realpath(path)), "rb")  # noqa: SIM115 - caller closes

    def stat(self, path: str) -> os.stat_result:
        return os.stat(self._host(self.realpath(path)))

    def lstat(self, path: str) -> os.stat_result:
        parent = self.realpath(posixpath.dirname(path) or "/")
        return os.lstat(self._host(posixpath.join(parent, posixpath.basename(path))))

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except OSError:
            return False
        return True

    def isfile(self, path: str) -> bool:
        try:
            return stat_module.S_ISREG(self.stat(path).st_mode)
        except OSError:
            return False

    def isdir(self, path: str) -> bool:
        try:
            return stat_module.S_ISDIR(self.stat(path).st_mode)
        except OSError:
            return False

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(self._host(self.realpath(path))))

    def readlink(self, path: str) -> str:
        parent = self.realpath(posixpath.dirname(path) or "/")
        return os.readlink(self._host(posixpath.join(parent, posixpath.basename(path))))


class ProcessRootFS(RootedFS):
    """The root file system of a running process, ``/proc/PID/root`` (a container's main process).

    When the process ends (the container was stopped, killed or removed, or its engine restarted),
    every path under it vanishes: that must not read as "the file is missing". Each operation that
    finds nothing first checks that the process still exists, and raises ``lost()`` when it does not.
    """

    def __init__(self, pid: int, lost: Callable[[], BaseException]) -> None:
        super().__init__(f"/proc/{pid}/root")
        self._lost = lost
        self._root_identity = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.root)
        except OSError:
            return None
        return info.st_dev, info.st_ino

    def _on_missing(self) -> None:
        # Gone, or the pid now belongs to another process with another root.
        identity = self._identity()
        if identity is None or identity != self._root_identity:
            raise self._lost()

    def _checked(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except OSError:
            self._on_missing()
            raise

    def open(self, path: str) -> BinaryIO:
        return self._checked(lambda: super(ProcessRootFS, self).open(path))

    def stat(self, path: str) -> os.stat_result:
        return self._checked(lambda: super(ProcessRootFS, self).stat(path))

    def lstat(self, path: str) -> os.stat_result:
        return self._checked(lambda: super(ProcessRootFS, self).lstat(path))

    def listdir(self, path: str) -> list[str]:
        return self._checked(lambda: super(ProcessRootFS, self).listdir(path))

    def readlink(self, path: str) -> str:
        return self._checked(lambda: super(ProcessRootFS, self).readlink(path))


class HostFS(RootedFS):
    """This host's own file system."""

    def __init__(self) -> None:
        super().__init__("/")

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)
