"""XSched's IPC state in a target: what is there, what is stale, and removing only the stale part.

XSched 1.2 talks over System V message queues (XSCHED-FACTS.md sections 4-5): the xserver's has
key ``0x1``; each GLB client holds one whose key is its pid. An xserver that dies of SIGTERM or
SIGKILL leaves its queue (and its clients') behind, and a stale server queue makes every later GLB
client run **unscheduled, silently** (its events pile up unread). Older builds left
``/dev/shm/__IPC_SHM__*`` and the SysV shared memory key ``0xbeef``; both kinds exist in the field.

Used by the doctor's check, ``doctor --fix``, and before and after every xsched trial. Never
removes what belongs to a live xserver or a live client: the server queue only when no xserver
runs, a client queue only when no process has its key as pid, the shm leftovers only when no
xserver runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from xsched_ops.target.base import Target
from xsched_ops.xsched import platforms

SERVER_QUEUE_KEY = 0x1

# Runs in the target with its python3 (standard library only): one function, used by its own
# exec (``_IPC_SCRIPT``: argv mode (inspect|clean), the shm glob, the shm key; prints one JSON
# document) and appended to the doctor's probe (``PROBE_PART``), so the doctor needs no exec of its own.
IPC_FUNCTION = r"""
def xsched_ipc_report(mode, shm_glob, shm_key_text):
    import glob, os, subprocess
    shm_key = int(shm_key_text, 16)

    def pids():
        return {int(name) for name in os.listdir("/proc") if name.isdigit()}

    def xservers():
        found = []
        for pid in pids():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as handle:
                    argv = [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == "xserver":
                found.append({"pid": pid, "argv": argv})
        return found

    def table(path):
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()
        except OSError:
            return None
        if not lines:
            return []
        names = lines[0].split()
        return [dict(zip(names, line.split())) for line in lines[1:] if line.strip()]

    def remove(args):
        try:
            return subprocess.run(args, capture_output=True).returncode == 0
        except OSError:
            return False

    try:
        with open("/proc/sys/kernel/pid_max") as handle:
            pid_max = int(handle.read())
    except (OSError, ValueError):
        pid_max = 4194304
    alive = pids()
    servers = xservers()
    queues = table("/proc/sysvipc/msg")
    report = {"readable": queues is not None, "xservers": servers, "server_queue": None, "client_queues": [],
              "shm_files": sorted(glob.glob(shm_glob)), "shm_key_present": False, "removed": []}
    for row in queues or []:
        key, msqid = int(row["key"]), int(row["msqid"])
        entry = {"key": "0x%08x" % key, "msqid": msqid, "messages": int(row.get("qnum", 0))}
        if key == 0x1:
            entry["stale"] = not servers
            report["server_queue"] = entry
        elif 1 < key <= pid_max:
            entry["pid"] = key
            entry["stale"] = key not in alive
            report["client_queues"].append(entry)
    for row in table("/proc/sysvipc/shm") or []:
        if int(row["key"]) == shm_key:
            report["shm_key_present"] = True
    if mode == "clean":
        server = report["server_queue"]
        if server and server["stale"] and remove(["ipcrm", "-q", str(server["msqid"])]):
            report["removed"].append("SysV message queue key %s (msqid %d, %d unread message(s))"
                                     % (server["key"], server["msqid"], server["messages"]))
        for entry in report["client_queues"]:
            if entry["stale"] and remove(["ipcrm", "-q", str(entry["msqid"])]):
                report["removed"].append("SysV message queue key %s of exited client pid %d"
                                         % (entry["key"], entry["pid"]))
        if not servers:
            for path in report["shm_files"]:
                try:
                    os.remove(path)
                    report["removed"].append(path)
                except OSError:
                    pass
            if report["shm_key_present"] and remove(["ipcrm", "--shmem-key", "0x%x" % shm_key]):
                report["removed"].append("SysV shared memory key 0x%x" % shm_key)
    return report
"""

_IPC_SCRIPT = IPC_FUNCTION + """
import json, sys
print(json.dumps(xsched_ipc_report(sys.argv[1], sys.argv[2], sys.argv[3])))
"""

PROBE_MARKER = "XSCHED_OPS_IPC "


def probe_part() -> str:
    """Python text to append to an in-target probe: prints the IPC report on a line of its own."""
    layout = platforms.common()
    return IPC_FUNCTION + (
        "\ntry:\n"
        f"    print({PROBE_MARKER!r} + json.dumps(xsched_ipc_report('inspect', {layout.ipc_shm_glob!r}, "
        f"{layout.ipc_sysv_key!r})))\n"
        "except Exception:\n"
        "    pass\n")


@dataclass(frozen=True)
class MessageQueue:
    key: str
    msqid: int
    messages: int
    stale: bool
    pid: int | None = None  # a client queue's key: its process


@dataclass(frozen=True)
class IpcState:
    readable: bool
    xservers: list[dict] = field(default_factory=list)  # {"pid", "argv"} of every xserver process
    server_queue: MessageQueue | None = None
    client_queues: list[MessageQueue] = field(default_factory=list)
    shm_files: list[str] = field(default_factory=list)
    shm_key_present: bool = False
    removed: list[str] = field(default_factory=list)

    @property
    def stale_server_queue(self) -> bool:
        return self.server_queue is not None and self.server_queue.stale

    @property
    def stale_client_queues(self) -> list[MessageQueue]:
        return [queue for queue in self.client_queues if queue.stale]

    @property
    def stale_shm(self) -> bool:
        return not self.xservers and bool(self.shm_files or self.shm_key_present)

    @property
    def anything_stale(self) -> bool:
        return self.stale_server_queue or bool(self.stale_client_queues) or self.stale_shm

    def removal_commands(self) -> list[str]:
        """Shell commands that remove exactly the stale state (what ``clean`` does)."""
        commands = []
        if self.stale_server_queue and self.server_queue is not None:
            commands.append(f"ipcrm -q {self.server_queue.msqid}")
        commands += [f"ipcrm -q {queue.msqid}" for queue in self.stale_client_queues]
        if self.stale_shm:
            layout = platforms.common()
            if self.shm_files:
                commands.append("rm -f " + " ".join(self.shm_files))
            if self.shm_key_present:
                commands.append(f"ipcrm --shmem-key {layout.ipc_sysv_key}")
        return commands


def _run(target: Target, mode: str, python: str) -> IpcState:
    layout = platforms.common()
    result = target.exec([python, "-c", _IPC_SCRIPT, mode, layout.ipc_shm_glob, layout.ipc_sysv_key], timeout=60)
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return IpcState(readable=False)
    return state_from_report(report)


def state_from_report(report: dict) -> IpcState:
    """The state a report of ``xsched_ipc_report`` describes."""

    def queue(entry: dict) -> MessageQueue:
        return MessageQueue(key=entry["key"], msqid=entry["msqid"], messages=entry["messages"], stale=entry["stale"],
                            pid=entry.get("pid"))

    server = report.get("server_queue")
    return IpcState(readable=bool(report.get("readable")), xservers=list(report.get("xservers") or []),
                    server_queue=queue(server) if server else None,
                    client_queues=[queue(entry) for entry in report.get("client_queues") or []],
                    shm_files=list(report.get("shm_files") or []),
                    shm_key_present=bool(report.get("shm_key_present")), removed=list(report.get("removed") or []))


def inspect(target: Target, python: str = "python3") -> IpcState:
    """XSched's IPC state in the target and the xservers running there; changes nothing."""
    return _run(target, "inspect", python)


def clean_ipc(target: Target, python: str = "python3") -> list[str]:
    """Remove XSched's stale IPC state (never a live xserver's or client's); lines saying what went."""
    return _run(target, "clean", python).removed
