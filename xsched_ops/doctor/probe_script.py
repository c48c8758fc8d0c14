# Runs INSIDE the target with its python3 (standard library only): collects facts in one go.
# Every probe returns "could not collect: ..." instead of failing, as torch's collect_env does.
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading

# What to look for comes from the platform table (xsched_ops/xsched/platforms.toml), as JSON.
SPEC = json.loads(os.environ.get("XSCHED_OPS_PROBE_SPEC") or "{}")

facts = {"python": sys.version.split()[0], "python_executable": sys.executable}


def attempt(name, function):
    try:
        facts[name] = function()
    except Exception as err:  # a probe never aborts the others
        facts[name] = "could not collect: %s: %s" % (type(err).__name__, err)


def run(argv, timeout=20):
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return {"exit_code": completed.returncode, "stdout": completed.stdout[-4000:], "stderr": completed.stderr[-2000:]}


def devices():
    nodes = {}
    for pattern in SPEC.get("device_globs", []):
        for path in glob.glob(pattern):
            nodes[path] = os.access(path, os.R_OK | os.W_OK)
    return nodes


def rocm_version():
    for path in SPEC.get("runtime_version_files", []):
        if os.path.exists(path):
            with open(path) as handle:
                return {"version": handle.read().strip(), "source": path}
    if shutil.which("dpkg-query"):
        for package in SPEC.get("runtime_version_packages", []):
            result = run(["dpkg-query", "-W", "-f=${Version}", package])
            if result["exit_code"] == 0 and result["stdout"].strip():
                return {"version": result["stdout"].strip(), "source": "package " + package}
    return None


def tools():
    found = {}
    for tool in ("rocminfo", "rocm-smi", "nvidia-smi", "ldconfig", "c++filt", "ipcrm", "ipcs"):
        found[tool] = shutil.which(tool)
    return found


def tool_output(tool, argv):
    if not shutil.which(tool):
        return None
    result = run(argv, timeout=20)
    text = re.sub(r"\x1b\[[0-9;]*m", "", result["stdout"] + result["stderr"]).strip().splitlines()
    return {"exit_code": result["exit_code"], "head": text[:6]}


TORCH_PROBE = r"""
import json, torch
info = {"version": torch.__version__, "hip": getattr(torch.version, "hip", None),
        "cuda": getattr(torch.version, "cuda", None)}
try:
    info["cuda_available"] = torch.cuda.is_available()
    info["device_count"] = torch.cuda.device_count()
    info["device_name"] = torch.cuda.get_device_name(0) if info["cuda_available"] else None
except Exception as err:
    info["cuda_available"] = "could not collect: %s" % err
try:
    import torchvision
    info["torchvision"] = torchvision.__version__
except Exception:
    info["torchvision"] = None
print(json.dumps(info))
"""


def torch_facts():
    result = run([sys.executable, "-c", TORCH_PROBE], timeout=120)
    if result["exit_code"] != 0:
        if "No module named 'torch'" in result["stderr"]:
            return None
        return "could not collect: " + (result["stderr"].strip().splitlines() or ["exit %d" % result["exit_code"]])[-1]
    return json.loads(result["stdout"].strip().splitlines()[-1])


def listening_ports():
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


def processes():
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv = [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
        except OSError:
            continue
        if argv:
            found.append({"pid": int(entry), "argv": argv[:6]})
    return found


def sysv_shm():
    segments = []
    if os.path.exists("/proc/sysvipc/shm"):
        with open("/proc/sysvipc/shm") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                segments.append({"key": "0x%08x" % (int(fields[0]) & 0xFFFFFFFF), "shmid": int(fields[1])})
    return segments


# The probes that start programs (and wait for them) run side by side, each in a thread: the
# probe takes as long as the slowest (torch when asked), not their sum. The others only read
# files, after the programs ended (the process list is not to show the probe's own children).
ORDER = ["devices", "rocm", "tools", "rocminfo", "rocm_smi", "nvidia_smi", "listening_ports", "processes",
         "ipc_shm_files", "sysv_shm", "torch"]
programs = [
    ("rocm", rocm_version),
    ("rocminfo", lambda: tool_output("rocminfo", ["rocminfo"])),
    ("rocm_smi", lambda: tool_output("rocm-smi", ["rocm-smi", "--showproductname"])),
    ("nvidia_smi", lambda: tool_output("nvidia-smi", ["nvidia-smi", "--query-gpu=name,driver_version",
                                                      "--format=csv,noheader"])),
]
if os.environ.get("XSCHED_OPS_PROBE_TORCH", "1") == "1":
    programs.append(("torch", torch_facts))
threads = [threading.Thread(target=attempt, args=probe) for probe in programs]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
attempt("devices", devices)
attempt("tools", tools)
attempt("listening_ports", listening_ports)
attempt("processes", processes)
attempt("ipc_shm_files", lambda: sorted(glob.glob("/dev/shm/__IPC_SHM__*")))
attempt("sysv_shm", sysv_shm)
ordered = dict((name, facts[name]) for name in ["python", "python_executable"] + ORDER if name in facts)
print("XSCHED_OPS_PROBE " + json.dumps(ordered))
