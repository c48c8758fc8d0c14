"""``xsched-ops sweep``: a grid of profile overrides, each cell a normal run, resumable.

The seed's lesson is that batch size (and load) is the key variable; a sweep runs the cells of a
grid (``--grid low.batch=8,64,256 --grid high.rate=10,20``), each cell one ordinary run folder
(its modes interleaved and repeated by the experiment as usual) inside one sweep folder with a
manifest, ``sweep.json``. Cells run in a seeded random order, so that slow drift of the machine
does not line up with one axis of the grid. Running the same command again resumes: a cell whose
run is valid and complete is skipped; a partial, failed or missing one runs again. With several
GPUs (``--gpus 0,1``, torch backend) cells run concurrently, one per GPU.

Enough samples, decided by rule (``xsched_ops/sweep/sampling.py``): after a valid cell, its P99 is
judged by MLPerf LoadGen's early-stopping rule and, with repeats, by a target width of its interval;
with a cap above the window (``--max-duration``), a cell whose verdict a longer window could still
change runs again, longer, until it is met or the cap is reached. Every attempt stays in the
manifest, and what was not met is said in the cell's record. The same command with a larger cap
grows the valid cells that stopped short of the rule (from 1.5x their last window).
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from xsched_ops.errors import UsageError, XSchedOpsError
from xsched_ops.profiles import Profile, apply_overrides, grid_literal
from xsched_ops.sweep.manifest import (
    MANIFEST,
    SWEEP_KIND,
    SWEEP_SCHEMA_VERSION,
    CellRecord,
    Manifest,
    read_manifest,
)
from xsched_ops.sweep.sampling import CellSampling, extended_duration

__all__ = ["MANIFEST", "SWEEP_KIND", "SWEEP_SCHEMA_VERSION", "CellRecord", "Manifest", "read_manifest"]

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


def grid_expressions(grid: dict[str, list], profile_name: str) -> list[str]:
    """A profile's ``[sweep.grid]`` as ``--grid`` expressions (values as the TOML literals ``--set`` parses)."""
    if not grid:
        raise UsageError(f"profile {profile_name} has no sweep.grid table and no --grid was given",
                         "give --grid KEY=V1,V2,... or add a sweep.grid table to the profile")
    return [f"{key}={','.join(grid_literal(value) for value in values)}" for key, values in grid.items()]


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


def _resumed_window(record: CellRecord, cap_s: float | None) -> float | None:
    """The window a valid cell resumes with when its P99 rule was not met and the cap now allows a longer
    one (1.5x its last window, at most the cap); None when it is done."""
    sampling = record.sampling or {}
    if record.status != "valid" or not cap_s or not sampling or sampling.get("met") or not record.duration_s:
        return None
    if record.duration_s >= cap_s:
        return None
    worth = any((not mode.get("rule_met") and not mode.get("p99_over_sla")) or mode.get("interval_met") is False
                for mode in (sampling.get("modes") or {}).values())
    return min(cap_s, math.ceil(record.duration_s * 1.5)) if worth else None


def plan_sweep(folder: Path, profile: Profile, axes: list[GridAxis], modes: list[str], repeat: int, seed: int,
               backend: str, placement: str | None, extra: list[str] | None = None,
               duration_s: float | None = None, max_duration_s: float | None = None,
               target_interval_pct: float | None = None) -> SweepPlan:
    """The sweep's manifest (new, or the folder's own when the plan is the same) and what is left to run."""
    cells = cells_of(axes)
    profiles = cell_profiles(profile, cells, extra, duration_s)
    if max_duration_s is not None:
        for cell_id, cell_profile in profiles.items():
            if max_duration_s < cell_profile.duration_s:
                raise UsageError(f"--max-duration {max_duration_s:g} is shorter than the window of cell {cell_id} "
                                 f"({cell_profile.duration_s:g} s)", "give a cap at least as long as --duration")
            apply_overrides(cell_profile, [], duration_s=max_duration_s)  # the cap must be a valid window too
    wanted = Manifest(profile=profile.name, grid={axis.key: list(axis.values) for axis in axes},
                      modes=list(modes), repeat=repeat, seed=seed, backend=backend, placement=placement,
                      order=[cell.cell_id for cell in seeded_order(cells, seed)],
                      cells={cell.cell_id: CellRecord(cell.cell_id, dict(cell.overrides)) for cell in cells},
                      max_duration_s=max_duration_s, target_interval_pct=target_interval_pct)
    existing = read_manifest(folder)
    if existing is not None and not existing.same_plan(wanted):
        raise UsageError(f"{folder / MANIFEST} holds another sweep (profile {existing.profile}, grid {existing.grid}, "
                         f"modes {existing.modes}, repeat {existing.repeat})",
                         "give another --sweep-dir, or the same options to resume it")
    manifest = existing or wanted
    # The sampling targets of this command apply to the cells it runs (a resumed sweep may raise the cap).
    manifest.max_duration_s, manifest.target_interval_pct = max_duration_s, target_interval_pct
    for cell_id in manifest.order:  # a larger cap than last time: valid cells short of the rule grow on
        longer = _resumed_window(manifest.cells[cell_id], max_duration_s)
        if longer is not None:
            profiles[cell_id] = apply_overrides(profiles[cell_id], [], duration_s=longer)
    to_run = [cell_id for cell_id in manifest.order
              if manifest.cells[cell_id].status != "valid" or _resumed_window(manifest.cells[cell_id], max_duration_s)]
    skipped = [cell_id for cell_id in manifest.order if cell_id not in to_run]
    return SweepPlan(folder, manifest, profiles, to_run, skipped)


RunCell = Callable[[str, Profile, str | None], tuple[str | None, str, str | None]]
"""(cell id, the cell's profile, gpu) -> (run id, status, reason); status valid|invalid|partial|failed."""
AssessRun = Callable[[str, Profile], CellSampling]
"""(run id of a valid cell, the cell's profile) -> the sampling rule's verdict on it."""


def _run_until_enough(manifest: Manifest, cell_id: str, profile: Profile, gpu: str | None, run_cell: RunCell,
                      assess: AssessRun | None,
                      on_extend: Callable[[str, float, CellSampling], None] | None) -> CellRecord:
    """One cell: run it; while the rule is not met and a longer window (up to the cap) could change that,
    run it again, longer. The record keeps every attempt and the verdict of the last."""
    record = CellRecord(cell_id, dict(manifest.cells[cell_id].overrides))
    record.attempts = list(manifest.cells[cell_id].attempts)
    while True:
        try:
            run_id, status, reason = run_cell(cell_id, profile, gpu)
        except XSchedOpsError as err:
            run_id, status, reason = None, "failed", err.one_line()
        record.run_id, record.status, record.reason, record.gpu = run_id, status, reason, gpu
        record.duration_s = profile.duration_s
        attempt = {"run_id": run_id, "duration_s": profile.duration_s, "status": status}
        record.attempts.append(attempt)
        record.sampling = None
        if status != "valid" or assess is None or run_id is None:
            return record
        sampling = assess(run_id, profile)
        record.sampling = sampling.to_json()
        attempt["sampling_met"] = sampling.met
        longer = extended_duration(profile.duration_s, sampling, manifest.max_duration_s or 0.0)
        if longer is None:
            if not sampling.met and manifest.max_duration_s and profile.duration_s >= manifest.max_duration_s:
                record.sampling["unmet"].append(f"the window reached its cap ({manifest.max_duration_s:g} s)")
            return record
        if on_extend is not None:
            on_extend(cell_id, longer, sampling)
        profile = apply_overrides(profile, [], duration_s=longer)


def run_sweep(plan: SweepPlan, run_cell: RunCell, gpus: list[str] | None = None,
              on_cell: Callable[[CellRecord], None] | None = None, assess: AssessRun | None = None,
              on_extend: Callable[[str, float, CellSampling], None] | None = None) -> Manifest:
    """Run every cell left, one at a time or one per GPU; the manifest is written after each cell.

    With ``assess``, a valid cell is judged by the sampling rule and, below the manifest's cap, rerun
    with a longer window until it is met (``xsched_ops/sweep/sampling.py``)."""
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
            record = _run_until_enough(manifest, cell_id, plan.profiles[cell_id], gpu, run_cell, assess, on_extend)
            with lock:
                manifest.cells[cell_id] = record
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
