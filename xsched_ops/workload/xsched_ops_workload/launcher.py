"""The `run` launcher: sim device, role processes, barrier, stop, exit status.

Children are started with an argv list (no shell), the launcher's environment plus each role's
``env``, and a parent-death signal so that nothing outlives a killed launcher.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

from xsched_ops_workload.barrier import FileBarrier
from xsched_ops_workload.events import EventLog
from xsched_ops_workload.spec import RunSpec

MAIN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py")
ROLE_GRACE_S = 10.0
# After a failure, roles get this long to record their end before they are terminated.
ABORT_GRACE_S = 3.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):
    raise _Interrupted(signal.Signals(signum).name)


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def _wait_for_socket(path: str, device: subprocess.Popen, timeout_s: float = 15.0) -> str | None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if device.poll() is not None:
            return f"simulated device exited with code {device.returncode}"
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            return None
        except OSError:
            time.sleep(0.05)
        finally:
            probe.close()
    return f"simulated device did not open {path} within {timeout_s:.0f} s"


def _stop_process(process: subprocess.Popen, grace_s: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_launcher(spec: RunSpec) -> int:
    os.makedirs(spec.output_dir, exist_ok=True)
    log = EventLog(os.path.join(spec.output_dir, "launcher.jsonl"))
    barrier = FileBarrier(spec.barrier_dir, [r.name for r in spec.roles])
    barrier.reset()
    for name in os.listdir(spec.barrier_dir):
        if name == "go.lock":
            os.unlink(os.path.join(spec.barrier_dir, name))
    base_env = dict(os.environ)
    log.write({"event": "launcher", "what": "started", "pid": os.getpid(), "run_id": spec.run_id,
               "backend": spec.backend, "placement": spec.placement, "simulated": spec.backend == "sim"})
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    device: subprocess.Popen | None = None
    roles: dict[str, subprocess.Popen] = {}
    exit_code = 0
    try:
        if spec.backend == "sim":
            assert spec.sim is not None
            # The device gets the launcher's environment, never a role's (it is the "hardware").
            device = _start([sys.executable, MAIN_SCRIPT, "device", "--spec", spec.path], base_env)
            problem = _wait_for_socket(spec.sim.socket, device)
            if problem:
                log.write({"event": "launcher", "what": "failed", "error": problem})
                return 1
        if spec.placement == "processes":
            groups = [([role.name], {**base_env, **role.env}) for role in spec.roles]
        else:
            groups = [([role.name for role in spec.roles], {**base_env, **spec.in_process_env()})]
        for names, env in groups:
            argv = [sys.executable, MAIN_SCRIPT, "role", "--spec", spec.path]
            for name in names:
                argv += ["--role", name]
            process = _start(argv, env)
            for name in names:
                roles[name] = process
            log.write({"event": "launcher", "what": "role_started", "role": ",".join(names), "pid": process.pid})

        processes = list(dict.fromkeys(roles.values()))
        running = set(processes)
        go_logged = False
        aborted_at: float | None = None
        while running:
            if aborted_at is None and barrier.aborted():
                aborted_at = time.monotonic()
            if aborted_at is not None and time.monotonic() - aborted_at > ABORT_GRACE_S:
                log.write({"event": "launcher", "what": "terminating", "reason": barrier.abort_reason()})
                for process in running:
                    _stop_process(process, 2.0)
                exit_code = 1
            if not go_logged and barrier.read_go() is not None:
                go_logged = True
                log.write({"event": "launcher", "what": "go", "t0_wall": barrier.read_go()})
            for process in list(running):
                code = process.poll()
                if code is None:
                    continue
                running.discard(process)
                names = [name for name, p in roles.items() if p is process]
                log.write({"event": "launcher", "what": "role_exited", "role": ",".join(names),
                           "pid": process.pid, "returncode": code})
                if code != 0:
                    exit_code = 1
                    barrier.abort(f"role process {','.join(names)} exited with code {code}")
                else:
                    barrier.request_stop()
            if device is not None and device.poll() is not None and running:
                log.write({"event": "launcher", "what": "failed",
                           "error": f"simulated device exited with code {device.returncode}"})
                barrier.abort("simulated device died")
                exit_code = 1
                device = None
            time.sleep(0.05)
    except _Interrupted as signal_name:
        log.write({"event": "launcher", "what": "interrupted", "signal": str(signal_name)})
        barrier.abort(f"launcher interrupted by {signal_name}")
        exit_code = 130
    finally:
        for process in dict.fromkeys(roles.values()):
            _stop_process(process, ROLE_GRACE_S if exit_code == 0 else 2.0)
        if device is not None:
            _stop_process(device, 5.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.write({"event": "launcher", "what": "finished", "returncode": exit_code})
        log.close()
    return exit_code
