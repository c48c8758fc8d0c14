"""Errors a user can act on.

Every fatal error class carries its own exit code and renders as one line that names the thing
(container, path, engine, profile) followed by a hint. The command line prints that line and
exits with the code; a traceback appears only with ``--debug``.
"""

from __future__ import annotations


class XSchedOpsError(Exception):
    """Base class: a failure the user can do something about."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        if self.hint:
            text += f" -- {' '.join(self.hint.split())}"
        return text


class UsageError(XSchedOpsError):
    """Bad arguments or options."""

    exit_code = 2


class EngineUnavailableError(XSchedOpsError):
    """No Docker engine answers at the configured address."""

    exit_code = 10


class ContainerNotFoundError(XSchedOpsError):
    exit_code = 11


class ContainerNotRunningError(XSchedOpsError):
    exit_code = 12


class TargetCommandTimeoutError(XSchedOpsError):
    exit_code = 13


class TargetPathError(XSchedOpsError):
    """A path that does not exist (or cannot be read) in the target or on the host."""

    exit_code = 14


class UnsafeArchiveError(XSchedOpsError):
    """An archive member would land outside its destination."""

    exit_code = 15


class SandboxError(XSchedOpsError):
    exit_code = 16


class EngineError(XSchedOpsError):
    """The engine answered with an error that is not one of the specific cases above."""

    exit_code = 17


class XSchedNotFoundError(XSchedOpsError):
    exit_code = 18


class ElfError(XSchedOpsError):
    """A file that is not a readable ELF object."""

    exit_code = 19


class ProfileError(XSchedOpsError):
    exit_code = 20


class InvalidRunError(XSchedOpsError):
    """A run that failed its validity checks and cannot be compared."""

    exit_code = 21


class RunFailedError(XSchedOpsError):
    """A run that ended early (a role died, timeout, interrupt); what was measured is kept, marked partial."""

    exit_code = 22


class ResultsError(XSchedOpsError):
    """Results not found or unreadable: not a run folder, a damaged record, an unwritable report path."""

    exit_code = 23


class ProfileArgumentError(UsageError, ProfileError):
    """A malformed ``--set KEY=VALUE`` expression (its syntax, not its value): bad arguments, exit 2.

    Also a ``ProfileError``, so that code catching profile problems still sees it.
    """

    exit_code = 2


class SandboxNotFoundError(ContainerNotFoundError, SandboxError):
    """``sandbox rm`` of a name no container has: no such container, exit 11 (also a ``SandboxError``)."""

    exit_code = 11
