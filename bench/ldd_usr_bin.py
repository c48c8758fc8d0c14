"""Benchmark: the loader model (`xsched-ops ldd`) over every ELF program in /usr/bin, side by side
with Debian's `libtree` and a shell loop of `ldd`, in one run.

    .venv/bin/python bench/ldd_usr_bin.py [--root DIR] [--repeats N]

``--root DIR`` analyses a file system below DIR (a container's /proc/<pid>/root or an unpacked
image) through RootedFS; libtree and ldd then cannot follow, and only the model is timed.
Each variant runs ``--repeats`` times; the table shows the median wall time and its ratio to the
model's. The model is timed in-process over all programs (one Python process, as one
`xsched-ops ldd FILE...` call) with and without symbol resolution, and once as a CLI process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from xsched_ops.elf import clear_cache  # noqa: E402
from xsched_ops.loader import analyze  # noqa: E402
from xsched_ops.target.fs import HostFS, RootedFS  # noqa: E402


def elf_programs(fs, folder: str) -> list[str]:
    programs = []
    for name in fs.listdir(folder):
        path = f"{folder}/{name}"
        try:
            if not fs.isfile(path) or fs.lstat(path).st_mode & 0o170000 == 0o120000:
                continue
            with fs.open(path) as handle:
                head = handle.read(20)
        except OSError:
            continue
        if head[:4] == b"\x7fELF" and head[4] == 2 and struct.unpack("<H", head[18:20])[0] == 62:
            programs.append(path)
    return programs


def time_it(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="/")
    parser.add_argument("--folder", default="/usr/bin")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    fs = HostFS() if args.root == "/" else RootedFS(args.root)
    programs = elf_programs(fs, args.folder)
    env = {"PATH": "/usr/bin:/bin"}
    print(f"{len(programs)} ELF programs in {args.folder} (root {args.root}); {args.repeats} repeats")

    def model(check_symbols: bool):
        def run() -> None:
            clear_cache()  # cold parse every repeat: no state kept between runs
            for program in programs:
                analyze(fs, program, env, "/", check_symbols=check_symbols)
        return run

    results: dict[str, list[float]] = {
        "model, tree only (in-process)": time_it(model(False), args.repeats),
        "model, tree + symbols (in-process)": time_it(model(True), args.repeats),
    }
    if args.root == "/":
        cli = [os.path.join(os.path.dirname(sys.executable), "xsched-ops"), "ldd", "--json", "--no-symbols", *programs]
        results["xsched-ops ldd --no-symbols (one CLI process)"] = time_it(
            lambda: subprocess.run(cli, capture_output=True, env=env, check=False), args.repeats)
        cli_symbols = [c for c in cli if c != "--no-symbols"]
        results["xsched-ops ldd (one CLI process, symbols)"] = time_it(
            lambda: subprocess.run(cli_symbols, capture_output=True, env=env, check=False), args.repeats)
        if shutil.which("libtree"):
            results["libtree, one process per file"] = time_it(
                lambda: [subprocess.run(["libtree", p], capture_output=True, check=False) for p in programs],
                args.repeats)
        script = 'for f in "$@"; do ldd "$f" >/dev/null 2>&1; done'
        results["shell loop of ldd"] = time_it(
            lambda: subprocess.run(["sh", "-c", script, "sh", *programs], env=env, check=False), args.repeats)

    base = statistics.median(results["model, tree only (in-process)"])
    print(f"{'variant':48} {'median s':>9} {'min s':>8} {'ratio':>7}")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:48} {median:9.3f} {min(times):8.3f} {median / base:7.2f}")


if __name__ == "__main__":
    main()
