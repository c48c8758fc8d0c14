"""``xsched-ops sweep``: a grid of profile overrides, each cell a normal run, resumable.

The seed's lesson is that batch size (and load) is the key variable; a sweep runs the cells of a
grid (``--grid low.batch=8,64,256 --grid high.rate=10,20``), each cell one ordinary run folder
(its modes interleaved and repeated by the experiment as usual) inside one sweep folder with a
manifest, ``sweep.json``. Cells run in a seeded random order, so that slow drift of the machine
does not line up with one axis of the grid. Running the same command again resumes: a cell whose
run is valid and complete is skipped; a partial, failed or missing one runs again. With several
GPUs (``--gpus 0,1``, torch backend) cells run concurrently, one per GPU.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from xsched_ops.errors import ResultsError, UsageError, XSchedOpsError
from xsched_ops.profiles import Profile, apply_overrides

SWEEP_SCHEMA_VERSION = 1
SWEEP_KIND = "xsched-ops-sweep"
MANIFEST = "sweep.json"
# Seconds a trial needs beyond warm-up, window and drain (start-up, model load), for the plan only.
TRIAL_OVERHEAD_S = {"sim": 8.0, "torch": 25.0}


@dataclass(frozen=True)
class GridAxis:
    key: str
    values: tuple[str, ...]


def parse_grid(expressions: list[str]) -> list[GridAxis]:
    """``KEY=V1,V2,...`` expressions; one line naming the bad one otherwise (usage error)."""
    axes: list[GridAxis] = []
    for expression in expressions:
        key, sep, values = expression.partition("=")
        key = key.strip()
        parts = tuple(value.strip() for value in values.split(","))
        if not sep or not key or not values.strip() or any(not part for part in parts):
            raise UsageError(f"--grid {expression!r}: expected KEY=V1,V2,... (no empty value)",
                             "e.g. --grid low.batch=8,64,256")
        if key in {axis.key for axis in axes}:
            raise UsageError(f"--grid {key} given twice", "give each key once, with all its values")
        if len(set(parts)) != len(parts):
            raise UsageError(f"--grid {expression!r}: a value is repeated", "give each value once")
        axes.append(GridAxis(key, parts))
    if not axes:
        raise UsageError("a sweep needs at least one --grid KEY=V1,V2,...", "e.g. --grid low.batch=8,64,256")
    return axes


@dataclass(frozen=True)
class Cell:
    cell_id: str
    overrides: tuple[tuple[str, str], ...]

    @property
    def assignments(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.overrides]


def cells_of(axes: list[GridAxis]) -> list[Cell]:
    cells = []
    for combination in itertools.product(*(axis.values for axis in axes)):
        overrides = tuple(zip((axis.key for axis in axes), combination, strict=True))
        cells.append(Cell(",".join(f"{key}={value}" for key, value in overrides), overrides))
    return cells


def cell_profiles(profile: Profile, cells: list[Cell], extra: list[str] | None = None,
                  duration_s: float | None = None) -> dict[str, Profile]:
    """Each cell's resolved profile; a value out of range is refused before anything runs."""
    return {cell.cell_id: apply_overrides(profile, [*(extra or []), *cell.assignments], duration_s)
            for cell in cells}


def seeded_order(cells: list[Cell], seed: int) -> list[Cell]:
    order = list(cells)
    random.Random(seed).shuffle(order)
    return order


@dataclass
class CellRecord:
    cell_id: str
    overrides: dict[str, str]
    run_id: str | None = None
    status: str = "pending"  # pending | valid | invalid | partial | failed
    reason: str | None = None
    gpu: str | None = None


@dataclass
class Manifest:
    profile: str
    grid: dict[str, list[str]]
    modes: list[str]
    repeat: int
    seed: int
    backend: str
    placement: str | None
    order: list[str]
    cells: dict[str, CellRecord] = field(default_factory=dict)
    created_wall: float = field(default_factory=time.time)

    def to_json(self) -> dict:
        return {"schema_version": SWEEP_SCHEMA_VERSION, "kind": SWEEP_KIND, "profile": self.profile,
                "grid": self.grid, "modes": self.modes, "repeat": self.repeat, "seed": self.seed,
                "backend": self.backend, "placement": self.placement, "order": self.order,
                "created_wall": self.created_wall,
                "cells": [vars(record) for record in (self.cells[cell_id] for cell_id in self.order)]}

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / (MANIFEST + ".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        temporary.replace(folder / MANIFEST)

    def same_plan(self, other: Manifest) -> bool:
        return (self.profile, self.grid, self.modes, self.repeat, self.backend, self.placement) == (
            other.profile, other.grid, other.modes, other.repeat, other.backend, other.placement)


def read_manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("kind") != SWEEP_KIND or document.get("schema_version") != SWEEP_SCHEMA_VERSION:
            raise ValueError("not a sweep manifest of a known version")
        cells = {record["cell_id"]: CellRecord(**record) for record in document["cells"]}
        return Manifest(profile=document["profile"], grid=document["grid"], modes=document["modes"],
                        repeat=document["repeat"], seed=document["seed"], backend=document["backend"],
                        placement=document.get("placement"), order=document["order"], cells=cells,
                        created_wall=document.get("created_wall", time.time()))
    except (ValueError, KeyError, TypeError) as err:
        raise ResultsError(f"{path} is not a readable sweep manifest ({err})",
                           "give another --sweep-dir, or remove the folder to start the sweep anew") from err


def expected_seconds(profile: Profile, modes: list[str], repeat: int, backend: str) -> float:
    per_trial = profile.warmup_s + profile.duration_s + profile.drain_s + TRIAL_OVERHEAD_S.get(backend, 25.0)
    return per_trial * len(modes) * repeat


@dataclass
class SweepPlan:
    folder: Path
    manifest: Manifest
    profiles: dict[str, Profile]
    to_run: list[str]
    skipped: list[str]

    def expected_seconds(self, backend: str, gpus: int = 1) -> float:
        total = sum(expected_seconds(self.profiles[cell_id], self.manifest.modes, self.manifest.repeat, backend)
                    for cell_id in self.to_run)
        return total / max(1, gpus)


def plan_sweep(folder: Path, profile: Profile, axes: list[GridAxis], modes: list[str], repeat: int, seed: int,
               backend: str, placement: str | None, extra: list[str] | None = None,
               duration_s: float | None = None) -> SweepPlan:
    """The sweep's manifest (new, or the folder's own when the plan is the same) and what is left to run."""
    cells = cells_of(axes)
    profiles = cell_profiles(profile, cells, extra, duration_s)
    wanted = Manifest(profile=profile.name, grid={axis.key: list(axis.values) for axis in axes},
                      modes=list(modes), repeat=repeat, seed=seed, backend=backend, placement=placement,
                      order=[cell.cell_id for cell in seeded_order(cells, seed)],
                      cells={cell.cell_id: CellRecord(cell.cell_id, dict(cell.overrides)) for cell in cells})
    existing = read_manifest(folder)
    if existing is not None and not existing.same_plan(wanted):
        raise UsageError(f"{folder / MANIFEST} holds another sweep (profile {existing.profile}, grid {existing.grid}, "
                         f"modes {existing.modes}, repeat {existing.repeat})",
                         "give another --sweep-dir, or the same options to resume it")
    manifest = existing or wanted
    to_run = [cell_id for cell_id in manifest.order if manifest.cells[cell_id].status != "valid"]
    skipped = [cell_id for cell_id in manifest.order if manifest.cells[cell_id].status == "valid"]
    return SweepPlan(folder, manifest, profiles, to_run, skipped)


RunCell = Callable[[str, Profile, str | None], tuple[str | None, str, str | None]]
"""(cell id, the cell's profile, gpu) -> (run id, status, reason); status valid|invalid|partial|failed."""


def run_sweep(plan: SweepPlan, run_cell: RunCell, gpus: list[str] | None = None,
              on_cell: Callable[[CellRecord], None] | None = None) -> Manifest:
    """Run every cell left, one at a time or one per GPU; the manifest is written after each cell."""
    manifest = plan.manifest
    manifest.write(plan.folder)
    lock = threading.Lock()
    pending = list(plan.to_run)

    def worker(gpu: str | None) -> None:
        while True:
            with lock:
                if not pending:
                    return
                cell_id = pending.pop(0)
            try:
                run_id, status, reason = run_cell(cell_id, plan.profiles[cell_id], gpu)
            except XSchedOpsError as err:
                run_id, status, reason = None, "failed", err.one_line()
            with lock:
                record = manifest.cells[cell_id]
                record.run_id, record.status, record.reason, record.gpu = run_id, status, reason, gpu
                manifest.write(plan.folder)
            if on_cell is not None:
                on_cell(record)

    slots = gpus or [None]
    if len(slots) == 1:
        worker(slots[0])
    else:
        with ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="sweep-gpu") as pool:
            for future in [pool.submit(worker, gpu) for gpu in slots]:
                future.result()
    return manifest
