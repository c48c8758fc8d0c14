"""Processes and IPC state of a run inside the target: find, end, clean.

Every process of a run carries ``XSCHEDOPS_RUN_MARK=<mark>`` in its environment (the launcher,
the simulated device, the roles, the xserver), so they are found through ``/proc/*/environ`` even
after they left their process group or lost their parent. The scripts are fixed text run with
``sh -c SCRIPT NAME ARGS...``: values travel as arguments, never spliced into the script.
"""

from __future__ import annotations

from xsched_ops import platforms
from xsched_ops.experiment.environments import RUN_MARK_VARIABLE
from xsched_ops.target.base import Target

_CLEAN_IPC = r"""
glob="$1"; key="$2"
for file in $glob; do
  [ -e "$file" ] && rm -f "$file" && printf 'removed %s\n' "$file"
done
if command -v ipcrm >/dev/null 2>&1 && ipcrm --shmem-key "$key" 2>/dev/null; then
  printf 'removed SysV shared memory key %s\n' "$key"
fi
true
"""


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


def clean_ipc(target: Target) -> list[str]:
    """Remove XSched's IPC state (``/dev/shm/__IPC_SHM__*`` and SysV key 0xbeef); lines saying what went."""
    layout = platforms.common()
    result = target.exec(["sh", "-c", _CLEAN_IPC, "xsched-ops-ipc", layout.ipc_shm_glob, layout.ipc_sysv_key],
                         timeout=60)
    return [line for line in result.stdout.splitlines() if line.strip()]
