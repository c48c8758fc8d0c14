"""Benchmark: `xsched-ops ldd` over every ELF program in /usr/bin of the SANDBOX IMAGE, side by side
with Debian's `libtree` and a shell loop of `ldd` run inside the container, in one run.

    .venv/bin/python bench/ldd_sandbox.py [--libtree-deb FILE] [--repeats N]

A throwaway sandbox (scenario `ok`) is created and removed at the end. The container cannot reach
a Debian mirror, so libtree's .deb (``apt-get download libtree`` on the host, or ``--libtree-deb``)
is copied in and installed with ``dpkg -i``. `xsched-ops ldd --container NAME FILE...` runs on the
host (one CLI process for all files, reading the container's files through /proc/<pid>/root);
libtree and ldd run in the container, one `docker exec` of a shell loop (one process per file)
each. Medians of N repeats; ratio to `xsched-ops ldd --no-symbols`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ldd_usr_bin import elf_programs, time_it  # noqa: E402

from xsched_ops.elf import clear_cache  # noqa: E402
from xsched_ops.loader import analyze  # noqa: E402
from xsched_ops.sandbox import containers  # noqa: E402
from xsched_ops.target.container import ContainerTarget  # noqa: E402


def libtree_deb(given: str | None, scratch: str) -> str:
    if given:
        return given
    subprocess.run(["apt-get", "download", "libtree"], cwd=scratch, check=True, capture_output=True)
    return os.path.join(scratch, next(f for f in os.listdir(scratch) if f.startswith("libtree_")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--libtree-deb")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    name = f"xo-bench-ldd-{uuid.uuid4().hex[:6]}"
    scratch = tempfile.mkdtemp(prefix="xo-libtree-")
    try:
        deb = libtree_deb(args.libtree_deb, scratch)
        containers.create_sandbox(name, "ok")
        subprocess.run(["docker", "cp", deb, f"{name}:/tmp/libtree.deb"], check=True)
        target = ContainerTarget.open(name)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        installed = target.exec(["dpkg", "-i", "/tmp/libtree.deb"], env=env, timeout=300)
        if installed.exit_code != 0:
            raise SystemExit(f"dpkg -i libtree failed: {installed.stdout}{installed.stderr}")
        fs = target.fs()
        programs = elf_programs(fs, "/usr/bin")
        print(f"{len(programs)} x86-64 ELF programs in /usr/bin of sandbox {name}; {args.repeats} repeats")

        def model(check_symbols: bool):
            def run() -> None:
                clear_cache()
                for program in programs:
                    analyze(fs, program, env, "/", check_symbols=check_symbols)
            return run

        cli = [os.path.join(os.path.dirname(sys.executable), "xsched-ops"), "ldd", "--container", name,
               "--json", "--no-symbols", *programs]
        cli_symbols = [c for c in cli if c != "--no-symbols"]

        def in_container(tool: str):
            script = f'for f in "$@"; do {tool} "$f" >/dev/null 2>&1; done'
            return lambda: target.exec(["sh", "-c", script, "sh", *programs], env=env, timeout=600)

        results = {
            "xsched-ops ldd --container --no-symbols (host, 1 CLI process)": time_it(
                lambda: subprocess.run(cli, capture_output=True, check=False), args.repeats),
            "xsched-ops ldd --container (host, 1 CLI process, symbols)": time_it(
                lambda: subprocess.run(cli_symbols, capture_output=True, check=False), args.repeats),
            "model in-process, tree only (RootedFS)": time_it(model(False), args.repeats),
            "model in-process, tree + symbols (RootedFS)": time_it(model(True), args.repeats),
            "libtree FILE, in container, 1 process per file": time_it(in_container("libtree"), args.repeats),
            "ldd FILE shell loop, in container": time_it(in_container("ldd"), args.repeats),
        }
        target.close()
        base = statistics.median(next(iter(results.values())))
        print(f"{'variant':64} {'median s':>9} {'min s':>8} {'ratio':>7}")
        for label, times in results.items():
            median = statistics.median(times)
            print(f"{label:64} {median:9.3f} {min(times):8.3f} {median / base:7.2f}")
    finally:
        try:
            containers.remove_sandbox(name)
        except Exception as err:  # not created
            print(f"(no sandbox to remove: {err})")
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
