"""NVIDIA MPS as a placement: the control daemon's lifecycle around one trial, and its evidence.

Under MPS the roles' processes share one GPU context and contend like two streams of one process
(XSCHED-FACTS.md sections 9-10), which is where XSched matters on NVIDIA. Per trial:
- before the first trial, ``preflight`` refuses when MPS cannot be used safely: not the CUDA
  platform (MPS does not exist on HIP), no ``nvidia-cuda-mps-control`` in the target, a compute
  mode that forbids it, or an MPS daemon already running (someone else's);
- ``start``: ``nvidia-cuda-mps-control -d`` with ``CUDA_MPS_PIPE_DIRECTORY`` and
  ``CUDA_MPS_LOG_DIRECTORY`` in folders of the run; every role gets the same two variables;
- while the roles run, the daemon's own answer (``get_server_list``, ``get_client_list``) is
  polled: that is the evidence that the roles really ran as MPS clients;
- ``stop``: ``quit`` on the control pipe, the folders removed; also after Ctrl-C and failures.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Mapping

from xsched_ops.errors import RunFailedError, UsageError, XSchedOpsError
from xsched_ops.results.models import MpsView
from xsched_ops.target.base import Target

CONTROL = "nvidia-cuda-mps-control"
PIPE_VARIABLE = "CUDA_MPS_PIPE_DIRECTORY"
LOG_VARIABLE = "CUDA_MPS_LOG_DIRECTORY"
DAEMON_NAMES = ("nvidia-cuda-mps-control", "nvidia-cuda-mps-server")

# Finds the MPS daemons running in the target (any user, any pipe folder): "pid argv0" lines.
_FIND_DAEMONS = r"""
import os, sys
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        argv = open("/proc/%s/cmdline" % name, "rb").read().split(b"\0")
    except OSError:
        continue
    if argv and argv[0] and os.path.basename(argv[0].decode(errors="replace")) in sys.argv[1:]:
        print(name, argv[0].decode(errors="replace"))
"""


def running_daemons(target: Target, env: Mapping[str, str], python: str = "python3") -> list[str]:
    result = target.exec([python, "-c", _FIND_DAEMONS, *DAEMON_NAMES], env=dict(env), timeout=60)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def preflight(target: Target, platform_name: str | None, env: Mapping[str, str], python: str = "python3") -> None:
    """Refuse, in one line, when MPS cannot be used in this target."""
    if platform_name is not None and platform_name != "cuda":
        raise UsageError(f"placement mps needs the CUDA platform (this target's XSched install is {platform_name})",
                         "NVIDIA MPS does not exist on HIP; use --placement processes")
    found = target.exec(["sh", "-c", f"command -v {CONTROL}"], env=dict(env), timeout=60)
    if found.exit_code != 0:
        raise UsageError(f"placement mps: no {CONTROL} in the target",
                         "install the NVIDIA driver's MPS tools in the target, or use --placement processes")
    mode = target.exec(["sh", "-c", "nvidia-smi --query-gpu=compute_mode --format=csv,noheader"],
                       env=dict(env), timeout=60)
    if mode.exit_code == 0 and "Prohibited" in mode.stdout:
        raise UsageError(f"placement mps: the GPU's compute mode is {mode.stdout.strip()}",
                         "set it to Default or Exclusive_Process (nvidia-smi -c), or use --placement processes")
    daemons = running_daemons(target, env, python)
    if daemons:
        raise RunFailedError(f"placement mps: an MPS daemon already runs in the target ({'; '.join(daemons)})",
                             "stop it (echo quit | nvidia-cuda-mps-control, with its pipe folder) or run without "
                             "--placement mps; xsched-ops does not share another daemon")


class MpsDaemon:
    """The MPS control daemon of one trial, in folders of the run."""

    POLL_S = 1.0

    def __init__(self, target: Target, run_folder: str, env: Mapping[str, str], python: str = "python3") -> None:
        self.target = target
        self.folder = posixpath.join(run_folder, "mps")
        self.pipe_dir = posixpath.join(self.folder, "pipe")
        self.log_dir = posixpath.join(self.folder, "log")
        self.python = python
        self.env = {**env, PIPE_VARIABLE: self.pipe_dir, LOG_VARIABLE: self.log_dir}
        self.servers: set[int] = set()
        self.clients: set[int] = set()
        self.started = False
        self.stopped_cleanly: bool | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def variables(self) -> dict[str, str]:
        """What every role (and the launcher) gets."""
        return {PIPE_VARIABLE: self.pipe_dir, LOG_VARIABLE: self.log_dir}

    def _control(self, command: str, timeout: float = 30) -> tuple[int, str]:
        result = self.target.exec(["sh", "-c", f'echo "$1" | {CONTROL}', "xsched-ops-mps", command], env=self.env,
                                  timeout=timeout)
        return result.exit_code, result.stdout + result.stderr

    def start(self) -> None:
        self.target.exec(["mkdir", "-p", self.pipe_dir, self.log_dir], timeout=60)
        # The daemon's output goes to a file: a daemon that kept our pipes open would hold the exec.
        output = posixpath.join(self.log_dir, "xsched-ops-start.log")
        result = self.target.exec(["sh", "-c", f'{CONTROL} -d < /dev/null > "$1" 2>&1', "xsched-ops-mps", output],
                                  env=self.env, timeout=60)
        if result.exit_code != 0:
            said = self.target.exec(["cat", output], timeout=60).stdout.strip()[-300:]
            raise RunFailedError(f"{CONTROL} -d failed (exit code {result.exit_code}): {said or 'no output'}",
                                 "run `xsched-ops doctor`")
        self.started = True
        self._thread = threading.Thread(target=self._poll_forever, name="mps-poll", daemon=True)
        self._thread.start()

    def poll(self) -> None:
        """Note the daemon's servers and their clients, as the daemon itself reports them."""
        code, text = self._control("get_server_list")
        if code != 0:
            return
        for server in (int(word) for word in text.split() if word.isdigit()):
            self.servers.add(server)
            code, clients = self._control(f"get_client_list {server}")
            if code == 0:
                self.clients.update(int(word) for word in clients.split() if word.isdigit())

    def _poll_forever(self) -> None:
        while not self._done.wait(self.POLL_S):
            try:
                self.poll()
            except XSchedOpsError:
                return

    def stop(self, grace_s: float = 10.0) -> None:
        """``quit`` the daemon, wait until it is gone, remove the run's folders."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(5)
        if not self.started:
            return
        self._control("quit")
        deadline = time.monotonic() + grace_s
        self.stopped_cleanly = False
        while time.monotonic() < deadline:
            if not self._mine_running():
                self.stopped_cleanly = True
                break
            time.sleep(0.2)
        self.target.exec(["rm", "-rf", self.folder], timeout=60)

    def _mine_running(self) -> bool:
        # preflight refused to start beside another daemon: any MPS daemon left is this trial's.
        return bool(running_daemons(self.target, self.env, self.python))

    def view(self) -> MpsView:
        return MpsView(pipe_directory=self.pipe_dir, servers=sorted(self.servers), clients=sorted(self.clients),
                       stopped_cleanly=self.stopped_cleanly)
