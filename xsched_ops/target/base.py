"""The interface every target implements: a Docker container or this host.

Commands are argv lists run with an explicit environment that is passed verbatim (no shell, no
``$VAR`` expansion). Output streams line by line while the exit code still comes back. On a
timeout or Ctrl-C every process the command started is killed *inside the target*: each
command carries a marker variable ``XSCHEDOPS_EXEC_ID`` that its descendants inherit, and the
kill finds them by it, even those that left the process group.
"""

from __future__ import annotations

import abc
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xsched_ops.target.fs import TargetFS

# The variable that marks every process a command starts, so that all of them can be found and
# killed inside the target.
# Not "XSCHED_...": that prefix is XSched's own settings, which the workload records as evidence.
EXEC_MARKER_VARIABLE = "XSCHEDOPS_EXEC_ID"

LineCallback = Callable[[str, str], None]
"""Called as ``on_line(stream, line)`` with stream ``"stdout"`` or ``"stderr"`` and the line without its newline."""


@dataclass(frozen=True)
class ExecResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class DirEntry:
    name: str
    kind: str  # "file", "dir", "link", "other"
    size: int
    link_target: str | None = None


@dataclass(frozen=True)
class TargetFacts:
    """Who and where the target is, as recorded in results and doctor output."""

    kind: str  # "container" or "local"
    name: str
    id: str = ""
    image: str = ""
    engine: str = ""
    engine_api_version: str = ""
    user: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def new_exec_id() -> str:
    return uuid.uuid4().hex[:16]


def exec_marker(exec_id: str) -> str:
    return f"{EXEC_MARKER_VARIABLE}={exec_id}"


# Seconds between SIGTERM and SIGKILL when processes are stopped.
KILL_GRACE_S = 2.0


class Target(abc.ABC):
    """A place where commands run and files move in and out."""

    kind: str = "abstract"

    # -- identity -----------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def name(self) -> str: ...

    @abc.abstractmethod
    def facts(self) -> TargetFacts: ...

    # -- processes ----------------------------------------------------------------------------
    @abc.abstractmethod
    def exec(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        on_line: LineCallback | None = None,
        capture: bool = True,
        user: str | None = None,
    ) -> ExecResult:
        """Run ``argv`` and wait for it.

        ``env`` is the *complete* environment of the process, passed verbatim; ``None`` means
        the target's own environment (``environment()``). ``on_line`` receives each output line
        as it arrives. On timeout every process of the command is killed inside the target and
        the result has ``timed_out=True``; on KeyboardInterrupt they are killed and the
        interrupt is re-raised.
        """

    @abc.abstractmethod
    def list_marked(self, marker: str) -> list[tuple[int, str]]:
        """``(pid, command line)`` of every process whose initial environment holds ``marker`` (``NAME=VALUE``)."""

    @abc.abstractmethod
    def signal_marked(self, marker: str, signal_name: str) -> int:
        """Send a signal (``TERM``, ``KILL``, ...) to every process carrying ``marker``; return how many got it."""

    def stop_marked(self, marker: str, grace_s: float = KILL_GRACE_S) -> int:
        """SIGTERM every process carrying ``marker``, SIGKILL those left after ``grace_s``; return how many were found."""
        found = self.signal_marked(marker, "TERM")
        if not found:
            return 0
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if not self.list_marked(marker):
                return found
        self.signal_marked(marker, "KILL")
        return found

    def kill_marked(self, exec_id: str, signal_name: str = "KILL") -> int:
        """Signal every process of the command started with ``exec_id``."""
        return self.signal_marked(exec_marker(exec_id), signal_name)

    # -- files --------------------------------------------------------------------------------
    @abc.abstractmethod
    def copy_in(self, source: Path, destination: str) -> None:
        """Copy a host file or folder to ``destination`` (the new path in the target); parents are created."""

    @abc.abstractmethod
    def copy_out(self, source: str, destination: Path) -> Path:
        """Copy a target file or folder to ``destination`` (a host folder, created); return the copied path."""

    @abc.abstractmethod
    def read_file(self, path: str, max_bytes: int | None = None) -> bytes: ...

    @abc.abstractmethod
    def list_dir(self, path: str) -> list[DirEntry]: ...

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def fs(self) -> TargetFS:
        """Read-only, range-reading access to the target's files (for the ELF reader)."""

    # -- configuration ------------------------------------------------------------------------
    @abc.abstractmethod
    def environment(self) -> dict[str, str]:
        """The environment a new process gets by default (a container's configured ``Env``)."""

    @abc.abstractmethod
    def user(self) -> str: ...

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def is_running(self) -> bool:
        """Whether the target can still run commands (a container can be stopped under us)."""
        return True

    def why_not_running(self) -> str | None:
        """Why the target cannot run commands any more (stopped, removed, engine gone), or None while it can."""
        return None

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
