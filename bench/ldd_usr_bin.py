"""Benchmark: the loader model (`xsched-ops ldd`) over every ELF program in /usr/bin, side by side
with pax-utils' `lddtree`, Debian's `libtree` and a shell loop of `ldd`, in one run.

    .venv/bin/python bench/ldd_usr_bin.py [--root DIR] [--folder /usr/bin] [--rounds N]
        [--baseline REF] [--no-model]

Variants, taking turns for N rounds (medians and minimums; ratio to the tree-only CLI):

* ``xsched-ops ldd --local --json FILE...``: one CLI process for all files, symbols resolved in
  each program's global scope; and with ``--no-symbols`` (the tree only). Compact JSON to a pipe
  that is read to the end.
* ``lddtree FILE...`` (pax-utils, Python + pyelftools): one process for all files. It is run with
  ``PATH=/usr/bin:/bin`` so that its ``#!/usr/bin/env python3`` finds Debian's python3 (which has
  python3-pyelftools), not a pyenv one.
* ``libtree FILE`` and ``ldd FILE`` in a shell loop, one process per file.
* the model in-process (``analyze_many``), tree only and with symbols, caches emptied first: what
  the CLI adds is interpreter start, imports and JSON.
* ``--baseline REF``: the CLI as of git REF, with and without symbols.

``--root DIR`` analyses a file system below DIR (a container's /proc/<pid>/root or an unpacked
image) through RootedFS; the tools cannot follow, and only the model is timed.

Acceptance (issue 16): with symbols, faster than the ``ldd`` loop and at least 5x faster than
``lddtree``; tree only at most 3x the ``libtree`` loop.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import baseline_tree, interleaved, machine_line, ratio, table  # noqa: E402

from xsched_ops.loader import analyze_many, clear_caches  # noqa: E402
from xsched_ops.target.fs import HostFS, RootedFS  # noqa: E402

TOOL_PATH = "/usr/bin:/bin"


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


def drain(argv: list[str], env: dict[str, str], cwd: str | None = None) -> int:
    """Run, reading stdout to the end (as a consumer of the JSON would); the size read."""
    completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd, check=False)
    return len(completed.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/")
    parser.add_argument("--folder", default="/usr/bin")
    parser.add_argument("--rounds", "--repeats", type=int, default=5)
    parser.add_argument("--baseline", metavar="REF", help="also run the CLI as of this git ref")
    parser.add_argument("--no-model", action="store_true", help="skip the in-process model variants")
    args = parser.parse_args()
    fs = HostFS() if args.root == "/" else RootedFS(args.root)
    programs = elf_programs(fs, args.folder)
    env = {"PATH": TOOL_PATH, "HOME": os.environ.get("HOME", "/tmp")}
    print(machine_line())
    print(f"{len(programs)} x86-64 ELF programs in {args.folder} (root {args.root}); {args.rounds} rounds")

    def model(check_symbols: bool):
        def run() -> None:
            clear_caches()  # cold: every ELF file and the ld.so.cache read again, no look-up kept
            gc.disable()  # as the CLI does while it analyses
            try:
                for _ in analyze_many(fs, programs, env, "/", check_symbols=check_symbols):
                    pass
            finally:
                gc.enable()
        return run

    variants = {}
    sizes: dict[str, int] = {}
    if args.root == "/":
        cli = [os.path.join(os.path.dirname(sys.executable), "xsched-ops"), "ldd", "--local", "--json"]
        variants["`xsched-ops ldd --local --json --no-symbols` (1 process)"] = \
            lambda: sizes.__setitem__("tree", drain([*cli, "--no-symbols", *programs], env))
        variants["`xsched-ops ldd --local --json` (1 process, symbols)"] = \
            lambda: sizes.__setitem__("symbols", drain([*cli, *programs], env))
        if args.baseline:
            tree = baseline_tree(args.baseline)
            old = [sys.executable, "-m", "xsched_ops", "ldd", "--json"]
            old_env = {**env, "PYTHONPATH": tree}
            variants[f"{args.baseline}: `ldd --json --no-symbols`"] = \
                lambda: drain([*old, "--no-symbols", *programs], old_env, cwd=tree)
            variants[f"{args.baseline}: `ldd --json` (symbols)"] = lambda: drain([*old, *programs], old_env, cwd=tree)
        if shutil.which("lddtree", path=TOOL_PATH):
            variants["`lddtree FILE...` (pax-utils, 1 process)"] = lambda: drain(["lddtree", *programs], env)
        else:
            print("lddtree: not installed (apt-get install pax-utils)")
        if shutil.which("libtree", path=TOOL_PATH):
            variants["`libtree FILE`, shell loop (1 process per file)"] = lambda: drain(
                ["sh", "-c", 'for f in "$@"; do libtree "$f"; done', "sh", *programs], env)
        else:
            print("libtree: not installed (apt-get install libtree)")
        variants["`ldd FILE`, shell loop (1 process per file)"] = lambda: drain(
            ["sh", "-c", 'for f in "$@"; do ldd "$f"; done', "sh", *programs], env)
    if not args.no_model:
        variants["model in-process, tree only"] = model(False)
        variants["model in-process, symbols"] = model(True)

    times = interleaved(variants, args.rounds)
    reference = next(iter(times))
    print()
    print(table(times, reference, "ratio"))
    if sizes:
        print(f"\nJSON on stdout: {sizes['tree']:,} bytes (tree only), {sizes['symbols']:,} bytes (symbols)")
    names = list(times)

    def find(prefix: str) -> str | None:
        return next((name for name in names if name.startswith(prefix)), None)

    symbols, tree_only = find("`xsched-ops ldd --local --json` "), find("`xsched-ops ldd --local --json --no-symbols`")
    ldd_loop, lddtree, libtree = find("`ldd FILE`"), find("`lddtree"), find("`libtree")
    if symbols and ldd_loop:
        print(f"symbols: {ratio(times, ldd_loop, symbols):.2f}x faster than the ldd loop (must be > 1)")
    if symbols and lddtree:
        print(f"symbols: {ratio(times, lddtree, symbols):.2f}x faster than lddtree (must be >= 5)")
    if tree_only and libtree:
        print(f"tree only: {ratio(times, tree_only, libtree):.2f}x the libtree loop (must be <= 3)")


if __name__ == "__main__":
    main()
