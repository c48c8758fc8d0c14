"""Benchmark: a sweep over one and over two Docker engines (sim backend): cells per hour and the
overhead between cells.

    .venv/bin/python bench/sweep_engines.py [--cells N] [--duration S] [--keep DIR]

Starts a second dockerd of its own (``tests/second_engine.py``, its own socket, data and exec
roots; the sandbox image loaded from the main engine), a sandbox container (scenario ``ok``) on
each engine (``hG-bench-...``), then runs the same sweep twice with the real CLI, each in a fresh
folder: ``xsched-ops sweep intensive --grid low.batch=... --mode baseline --repeat 1 --duration S
--set warmup_s=1 --set drain_s=2`` with one ``--target`` (the main engine's container), then with
two (one on each engine). Both are removed at the end, and the second engine stopped.

Figures, from the CLI's wall time and each cell's run folder (``run.json``'s ``created_wall`` and
``result.json``'s ``analyzed_wall``):

* cells per hour: cells / the sweep's wall time;
* a cell's run: ``created_wall`` to ``analyzed_wall``;
* the gap between cells on one target: one cell's ``analyzed_wall`` to the next ``created_wall`` of
  a cell on the same target (the sweep's own work and the next run's setup before its record);
* the sweep beyond its runs: wall time minus the longest chain of runs on one target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "bench"))
sys.path.insert(0, str(REPOSITORY / "tests"))

from benchutil import machine_line  # noqa: E402

BATCHES = [8, 16, 32, 64, 128, 256, 512, 1024]


def sweep(folder: Path, grid: str, duration: float, targets: list[str]) -> tuple[float, dict, int]:
    argv = [str(Path(sys.executable).parent / "xsched-ops"), "sweep", "intensive", "--grid", grid, "--mode",
            "baseline", "--repeat", "1", "--duration", f"{duration:g}", "--set", "warmup_s=1", "--set", "drain_s=2",
            "--sweep-dir", str(folder), "--json"]
    for target in targets:
        argv += ["--target", target]
    start = time.monotonic()
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - start
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-3000:])
    return wall, json.loads(completed.stdout), completed.returncode


def figures(folder: Path, document: dict, wall: float) -> dict:
    cells = document["manifest"]["cells"]
    spans: dict[str, list[tuple[float, float]]] = {}
    for cell in cells:
        run = folder / "runs" / cell["run_id"]
        created = json.loads((run / "run.json").read_text())["created_wall"]
        analyzed = json.loads((run / "result.json").read_text())["analyzed_wall"]
        spans.setdefault(cell["target"]["label"], []).append((created, analyzed))
    runs = [end - start for chain in spans.values() for start, end in chain]
    gaps = [later[0] - earlier[1] for chain in spans.values()
            for earlier, later in zip(sorted(chain), sorted(chain)[1:], strict=False)]
    longest = max(sum(end - start for start, end in chain) for chain in spans.values())
    return {"cells": len(cells), "valid": sum(cell["status"] == "valid" for cell in cells), "wall_s": wall,
            "cells_per_hour": len(cells) / wall * 3600, "run_median_s": statistics.median(runs),
            "gaps": sorted(gaps), "beyond_runs_s": wall - longest,
            "per_target": {label: len(chain) for label, chain in spans.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=6, help=f"cells of the grid (at most {len(BATCHES)})")
    parser.add_argument("--duration", type=float, default=4.0, help="window of every trial, seconds")
    parser.add_argument("--keep", type=Path, help="keep the sweep folders here")
    args = parser.parse_args()
    import docker
    from second_engine import start_second_engine

    from xsched_ops.sandbox import create_sandbox, remove_sandbox
    from xsched_ops.sandbox.image import ensure_image

    client = docker.from_env(timeout=600)
    image = ensure_image(client)
    client.close()
    grid = "low.batch=" + ",".join(str(batch) for batch in BATCHES[:args.cells])
    folder = args.keep or Path(tempfile.mkdtemp(prefix="xo-bench-sweep-"))
    machine = machine_line()
    tag = uuid.uuid4().hex[:6]
    main_name, other_name = f"hG-bench-{tag}-1", f"hG-bench-{tag}-2"
    results = {}
    with start_second_engine(image, name=f"bench{tag}") as engine:
        create_sandbox(main_name, "ok")
        try:
            create_sandbox(other_name, "ok", docker_host=engine.url)
            sweep(folder / "warm", "low.batch=8", args.duration, [main_name])  # not timed: caches, page cache
            for label, targets in (("one engine", [main_name]),
                                   ("two engines", [main_name, f"{other_name}@{engine.url}"])):
                where = folder / label.replace(" ", "-")
                wall, document, code = sweep(where, grid, args.duration, targets)
                results[label] = {**figures(where, document, wall), "exit": code}
        finally:
            remove_sandbox(main_name)
            engine.docker("rm", "-f", other_name, check=False)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine}; grid {grid}, mode baseline, "
          f"1 trial a cell, window {args.duration:g} s + warm-up 1 s + drain 2 s")
    print()
    print("| engines | cells (valid) | wall s | cells per hour | a cell's run, median s | gap between cells on a "
          "target, s | sweep beyond its runs, s | cells per target |")
    print("|---|---:|---:|---:|---:|---|---:|---|")
    for label, figure in results.items():
        gaps = ", ".join(f"{gap:.1f}" for gap in figure["gaps"])
        split = ", ".join(str(count) for count in figure["per_target"].values())
        print(f"| {label} | {figure['cells']} ({figure['valid']}) | {figure['wall_s']:.1f} | "
              f"{figure['cells_per_hour']:.0f} | {figure['run_median_s']:.1f} | {gaps} | "
              f"{figure['beyond_runs_s']:.1f} | {split} |")
    print(f"\nload average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    if args.keep is None:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


if __name__ == "__main__":
    main()
