"""Benchmark: `xsched-ops doctor` on a sandbox whose loader path includes Debian's librocsparse0
(a ~1.2 GB shared library), against the same doctor on a plain `ok` sandbox.

    .venv/bin/python bench/doctor_large_library.py [--debs DIR] [--repeats N] [--no-strace]

Set-up: a sandbox created like scenario `ok`, except that its container Env carries
``LD_PRELOAD="<shim> /usr/lib/x86_64-linux-gnu/librocsparse.so.0"``; Debian's librocsparse0 and
the dependencies the image lacks (``apt-get download`` on the host into ``--debs``, or into a
temporary folder) are copied in and installed with ``dpkg -i``. So every doctor check that
models the loader (shim-loads, duplicates, preload, ground truth) has librocsparse in the global
scope, and symbol resolution has to consult its dynamic symbol table.

Measured, per repeat (ELF cache cleared before each; doctor run in this process through
``xsched_ops.cli.invoke`` with ``--no-torch --json``): total doctor wall time, and
``ElfObject.bytes_read`` of librocsparse (bytes the ELF reader asked for, header + dynamic
segment + symbol and version tables). Once more as a separate CLI process under
``strace -f -e trace=read,pread64,mmap -y``: the bytes actually returned by read/pread64 on file
descriptors open on librocsparse (the real I/O of the xsched-ops process, buffering included),
and whether it was mmapped. The real loader in the container (the doctor's ground-truth probe)
maps the library for real; that is the container's process, not xsched-ops, and is not counted.
Every container made here is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from types import MappingProxyType

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from xsched_ops.cli import invoke  # noqa: E402
from xsched_ops.elf import clear_cache  # noqa: E402
from xsched_ops.elf import reader as elf_reader  # noqa: E402
from xsched_ops.sandbox import containers, scenarios  # noqa: E402
from xsched_ops.target.container import ContainerTarget  # noqa: E402

LIBRARY = "/usr/lib/x86_64-linux-gnu/librocsparse.so.0"
# librocsparse0 and what Debian bookworm's sandbox image lacks of its dependency closure.
PACKAGES = (
    "librocsparse0", "libamdhip64-5", "libamd-comgr2", "libhsa-runtime64-1", "libhsakmt1", "libllvm15",
    "libdrm-amdgpu1", "libdrm2", "libdrm-common", "libelf1", "libnuma1", "libz3-4", "libxml2", "libicu72",
    "libedit2", "libbsd0", "libmd0",
)
SCENARIO = "bench-large-library"


def register_scenario() -> None:
    ok = scenarios.get("ok")
    large = replace(ok, name=SCENARIO, description="ok + librocsparse preloaded beside the shim",
                    env=MappingProxyType({"LD_PRELOAD": f"{scenarios.SHIM} {LIBRARY}"}))
    scenarios.SCENARIOS = MappingProxyType({**scenarios.SCENARIOS, SCENARIO: large})


def download(debs: str | None) -> str:
    if debs:
        return debs
    folder = tempfile.mkdtemp(prefix="xo-debs-")
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=folder, check=True, capture_output=True)
    return folder


def install(name: str, debs: str) -> None:
    subprocess.run(["docker", "cp", f"{debs}/.", f"{name}:/tmp/debs"], check=True)
    target = ContainerTarget.open(name)
    try:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        result = target.exec(["sh", "-c", "dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs"], env=env, timeout=600)
        if result.exit_code != 0:
            raise SystemExit(f"dpkg -i failed in {name}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        size = int(target.exec(["stat", "-L", "-c", "%s", LIBRARY], env=env).stdout.strip())
    finally:
        target.close()
    print(f"installed {len(os.listdir(debs))} packages in {name}; {LIBRARY}: {size} bytes")


def doctor_once(name: str) -> tuple[float, int, list[str]]:
    clear_cache()
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        invoke(["doctor", "--container", name, "--no-torch", "--json"])
    elapsed = time.perf_counter() - start
    read = sum(obj.bytes_read for obj in list(elf_reader._CACHE.values()) if obj.path.endswith("librocsparse.so.0")
               or os.path.basename(obj.path).startswith("librocsparse.so"))
    findings = json.loads(out.getvalue())["findings"]
    failing = [f["id"] for f in findings if f["severity"] in ("fail", "crash")]
    return elapsed, read, failing


def strace_bytes(name: str) -> tuple[int, int, int]:
    """(bytes returned by read/pread64 on librocsparse fds, number of such calls, mmaps of it)."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as trace:
        cli = os.path.join(os.path.dirname(sys.executable), "xsched-ops")
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=read,pread64,mmap", "-y", "-o", trace.name,
                        cli, "doctor", "--container", name, "--no-torch", "--json"],
                       capture_output=True, check=False)
        total = calls = mmaps = 0
        with open(trace.name, errors="replace") as handle:
            for line in handle:
                if "librocsparse" not in line:
                    continue
                if "mmap(" in line:
                    mmaps += 1
                    continue
                match = re.search(r"(?:read|pread64)\(\d+<[^>]*librocsparse[^>]*>.*\)\s+=\s+(\d+)", line)
                if match:
                    total += int(match.group(1))
                    calls += 1
    return total, calls, mmaps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--debs", help="folder with the .deb files (default: apt-get download into a temp dir)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-strace", action="store_true")
    args = parser.parse_args()
    register_scenario()
    debs = download(args.debs)
    suffix = uuid.uuid4().hex[:6]
    large, plain = f"xo-bench-rocsparse-{suffix}", f"xo-bench-ok-{suffix}"
    made: list[str] = []
    try:
        containers.create_sandbox(plain, "ok")
        made.append(plain)
        containers.create_sandbox(large, SCENARIO)
        made.append(large)
        install(large, debs)
        rows = {}
        for label, name in (("doctor, ok sandbox", plain), ("doctor, ok + librocsparse preloaded", large)):
            runs = [doctor_once(name) for _ in range(args.repeats)]
            times = [r[0] for r in runs]
            rows[label] = (times, runs[-1][1], runs[-1][2])
        base = statistics.median(rows["doctor, ok sandbox"][0])
        print(f"{args.repeats} repeats; ELF cache cleared before each")
        print(f"{'variant':40} {'median s':>9} {'min s':>8} {'ratio':>6} {'ElfObject.bytes_read':>21}  failing checks")
        for label, (times, read, failing) in rows.items():
            median = statistics.median(times)
            print(f"{label:40} {median:9.3f} {min(times):8.3f} {median / base:6.2f} {read:21d}  {','.join(failing)}")
        if not args.no_strace and shutil.which("strace"):
            total, calls, mmaps = strace_bytes(large)
            print(f"strace of one CLI doctor run: {total} bytes in {calls} read/pread64 calls on librocsparse; "
                  f"{mmaps} mmaps of it")
    finally:
        for name in made:
            containers.remove_sandbox(name)
        if not args.debs:
            shutil.rmtree(debs, ignore_errors=True)


if __name__ == "__main__":
    main()
