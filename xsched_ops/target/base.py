"""The interface every target implements: a Docker container or this host.

Commands are argv lists run with an explicit environment that is passed verbatim (no shell, no
``$VAR`` expansion). Output streams line by line while the exit code still comes back. On a
timeout or Ctrl-C every process the command started is killed *inside the target*: each
command carries a marker variable ``XSCHEDOPS_EXEC_ID`` that its descendants inherit, and the
kill finds them by it, even those that left the process group.
"""

from __future__ import annotations

import abc
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
    interrupted: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.interrupted


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
    def kill_marked(self, exec_id: str, signal_name: str = "KILL") -> int:
        """Send a signal to every process in the target whose environment carries ``exec_id``; return how many."""

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

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
