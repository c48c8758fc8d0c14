"""Processes of a run inside the target: find and end them (IPC state: ``xsched_ops.xsched.ipc_state``).

Every process of a run carries ``XSCHEDOPS_RUN_MARK=<mark>`` in its environment (the launcher,
the simulated device, the roles, the xserver), so the target's marker API finds them through
``/proc/*/environ`` even after they left their process group or lost their parent.
"""

from __future__ import annotations

from xsched_ops.environment.roles import RUN_MARK_VARIABLE
from xsched_ops.target.base import Target


def _marker(mark: str) -> str:
    return f"{RUN_MARK_VARIABLE}={mark}"


def marked_processes(target: Target, mark: str) -> list[tuple[int, str]]:
    """``(pid, command line)`` of every process in the target that carries the run's mark."""
    return target.list_marked(_marker(mark))


def signal_marked(target: Target, mark: str, signal_name: str) -> int:
    """Send ``signal_name`` (TERM, KILL, ...) to every process of the run; return how many got it."""
    return target.signal_marked(_marker(mark), signal_name)


def end_marked(target: Target, mark: str, grace_s: float = 3.0) -> int:
    """TERM every process of the run, then KILL what is still there after ``grace_s``; return how many were found."""
    return target.stop_marked(_marker(mark), grace_s)
