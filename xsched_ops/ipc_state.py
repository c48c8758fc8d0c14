"""XSched's IPC state in a target (``/dev/shm/__IPC_SHM__*`` and its SysV shared memory key).

Removed before and after an XSched run, and by `doctor --fix` when no xserver runs: a new xserver
or process could attach to what an earlier one left.
"""

from __future__ import annotations

from xsched_ops import platforms
from xsched_ops.target.base import Target

# Fixed text: the glob and the key travel as arguments.
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


def clean_ipc(target: Target) -> list[str]:
    """Remove XSched's IPC state (``/dev/shm/__IPC_SHM__*`` and SysV key 0xbeef); lines saying what went."""
    layout = platforms.common()
    result = target.exec(["sh", "-c", _CLEAN_IPC, "xsched-ops-ipc", layout.ipc_shm_glob, layout.ipc_sysv_key],
                         timeout=60)
    return [line for line in result.stdout.splitlines() if line.strip()]
