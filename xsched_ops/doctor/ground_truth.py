"""Ground truth: start the target's real python3 under an environment and see what the loader did."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from xsched_ops.target.base import Target
from xsched_ops.xsched.platforms import Platform
from xsched_ops.xsched.settings import effective_scheduler

MARKER = "XSCHED_OPS_MAPS "
# Loads the libraries named in argv with ctypes (what torch or a CUDA program does with the
# runtime's soname), imports torch when asked (torch is what loads the runtime), then reads its
# own memory map. A library that does not load is reported on stderr; the probe goes on.
_PROBE = """
import ctypes, json, os, sys
arguments = sys.argv[1:]
init_symbol = None
loaded = None
print("XSCHED_OPS_PID %d" % os.getpid())
for name in arguments:
    if name == "--torch":
        continue
    if name.startswith("--init="):
        init_symbol = name[len("--init="):]
        continue
    try:
        loaded = ctypes.CDLL(name)
    except OSError as err:
        sys.stderr.write("xsched-ops: loading %s failed: %s\\n" % (name, err))
if init_symbol:
    # As an application starts its runtime: this is what makes XSched create its first XQueue.
    try:
        print("XSCHED_OPS_INIT %d" % getattr(loaded or ctypes.CDLL(None), init_symbol)(0))
    except AttributeError as err:
        sys.stderr.write("xsched-ops: %s not found: %s\\n" % (init_symbol, err))
if "--torch" in arguments:
    try:
        import torch
    except Exception as err:
        sys.stderr.write("xsched-ops: import torch failed: %s\\n" % err)
paths = set()
for line in open("/proc/self/maps"):
    parts = line.split(None, 5)
    if len(parts) == 6 and ".so" in parts[5]:
        paths.add(parts[5].strip())
print("XSCHED_OPS_MAPS " + json.dumps(sorted(paths)))
"""


def libraries_for_route(platform: Platform, route: str) -> list[str]:
    """What a process must load for the shim to be mapped: with the libpath route, the runtime's
    soname (``libcuda.so.1`` resolves to the shim's softlink); with the preload route, nothing."""
    return [platform.runtime_libs[0]] if route == "libpath" else []


LOADER_ERROR_MARKERS = ("symbol lookup error", "xsched-ops: loading", "error while loading shared libraries", "cannot be preloaded",
                        "version `", "undefined symbol")


GLOBAL_SCHEDULER_NOTE = ("checked without XSCHED_SCHEDULER=GLB: a GLB client dies at start-up when no xserver "
                         "runs, and would join a running one (fix-and-rerun verifies with the xserver running)")


def without_global_scheduler(env: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """``env`` without the GLB setting when it would make the process a global-scheduler client, and why.

    A loader check must not depend on an xserver (XSCHED-FACTS.md section 1: a GLB client with no
    xserver exits 1 as soon as the shim initialises) nor connect to someone's running one.
    """
    if effective_scheduler(env).kind != "global":
        return dict(env), None
    return {key: value for key, value in env.items() if key != "XSCHED_SCHEDULER"}, GLOBAL_SCHEDULER_NOTE


@dataclass(frozen=True)
class RealLoad:
    exit_code: int
    started: bool  # python3 ran to the end of the probe
    pid: int | None = None
    mapped: list[str] = field(default_factory=list)
    loader_messages: list[str] = field(default_factory=list)
    stderr: str = ""

    def has_mapped(self, file_name: str) -> bool:
        return any(posixpath.basename(path) == file_name for path in self.mapped)

    def mapped_path(self, file_name: str) -> str | None:
        return next((path for path in self.mapped if posixpath.basename(path) == file_name), None)

    def as_dict(self) -> dict[str, object]:
        return {"exit_code": self.exit_code, "started": self.started, "pid": self.pid,
                "loader_messages": self.loader_messages, "mapped": self.mapped}


def _probe_arguments(load_libraries: Sequence[str], call_init: str | None, import_torch: bool) -> list[str]:
    return [*load_libraries, *([f"--init={call_init}"] if call_init else []), *(["--torch"] if import_torch else [])]


def real_load(target: Target, env: Mapping[str, str], import_torch: bool = False, timeout: float = 180,
              load_libraries: Sequence[str] = (), call_init: str | None = None) -> RealLoad:
    """Start python3 under ``env``; it loads ``load_libraries`` (ctypes.CDLL, in order), calls the
    runtime's entry point ``call_init(0)`` when given (from the last library loaded, else as the
    process has it), imports torch when asked, and reports its pid and every mapped shared object."""
    argv = ["python3", "-c", _PROBE, *_probe_arguments(load_libraries, call_init, import_torch)]
    result = target.exec(argv, env=dict(env), timeout=timeout)
    return _parse_load(result.exit_code, result.stdout, result.stderr)


@dataclass(frozen=True)
class LoadJob:
    """One python3 of ``real_loads``: its complete environment and what it loads."""

    env: Mapping[str, str]
    load_libraries: Sequence[str] = ()
    import_torch: bool = False


# Runs in the target: starts each job's python3 one after the other, each with exactly its own
# environment (plus the exec's marker, so a timeout still ends it), and prints each result.
_DRIVER = """
import json, os, shutil, subprocess, sys
jobs, probe, marker = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
for job in jobs:
    env = dict(job["env"])
    if marker in os.environ:
        env[marker] = os.environ[marker]
    python = shutil.which("python3", path=env.get("PATH", os.defpath)) or "python3"
    try:
        done = subprocess.run([python, "-c", probe] + job["args"], env=env, capture_output=True, text=True,
                              timeout=job["timeout"])
        result = {"exit_code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    except (OSError, subprocess.TimeoutExpired) as err:
        result = {"exit_code": -1, "stdout": "", "stderr": "xsched-ops: %s" % err}
    print("XSCHED_OPS_LOAD " + json.dumps(result), flush=True)
"""


def real_loads(target: Target, jobs: Sequence[LoadJob], timeout: float = 180) -> list[RealLoad]:
    """Several ``real_load``s in one command in the target (one exec instead of one each)."""
    from xsched_ops.target.base import EXEC_MARKER_VARIABLE

    encoded = json.dumps([{"env": dict(job.env), "timeout": timeout,
                           "args": _probe_arguments(job.load_libraries, None, job.import_torch)} for job in jobs])
    driver_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    result = target.exec(["python3", "-c", _DRIVER, encoded, _PROBE, EXEC_MARKER_VARIABLE], env=driver_env,
                         timeout=timeout * len(jobs) + 30)
    loads = []
    for line in result.stdout.splitlines():
        if line.startswith("XSCHED_OPS_LOAD "):
            document = json.loads(line.removeprefix("XSCHED_OPS_LOAD "))
            loads.append(_parse_load(document["exit_code"], document["stdout"], document["stderr"]))
    while len(loads) < len(jobs):  # the driver itself did not get that far
        loads.append(_parse_load(result.exit_code, "", result.stderr or "xsched-ops: the load driver failed"))
    return loads


def _parse_load(exit_code: int, stdout: str, stderr: str) -> RealLoad:
    mapped: list[str] = []
    started = False
    pid = None
    for line in stdout.splitlines():
        if line.startswith("XSCHED_OPS_PID ") and line.split()[1].isdigit():
            pid = int(line.split()[1])
        if line.startswith(MARKER):
            mapped = json.loads(line.removeprefix(MARKER))
            started = True
    messages = [line.strip() for line in stderr.splitlines()
                if any(marker in line for marker in LOADER_ERROR_MARKERS)]
    return RealLoad(exit_code=exit_code, started=started, pid=pid, mapped=mapped, loader_messages=messages,
                    stderr=stderr[-4000:])
