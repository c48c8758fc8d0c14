"""``xsched-ops sweep``: a grid of profile overrides, each cell a normal run, resumable.

The seed's lesson is that batch size (and load) is the key variable; a sweep runs the cells of a
grid (``--grid low.batch=8,64,256 --grid high.rate=10,20``), each cell one ordinary run folder
(its modes interleaved and repeated by the experiment as usual) inside one sweep folder with a
manifest, ``sweep.json``. Cells run in a seeded random order, so that slow drift of the machine
does not line up with one axis of the grid. Running the same command again resumes: a cell whose
run is valid and complete is skipped; a partial, failed or missing one runs again. Cells run on
slots, one cell per slot at a time: each target (``--target``, containers on any Docker engine;
``xsched_ops/sweep/targets.py``) times each GPU (``--gpus 0,1``, torch backend), whichever is free
first. A cell whose target is lost (engine stopped, container gone) runs again on another target,
and the loss is kept in the manifest.

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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
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


@dataclass(frozen=True)
class Slot:
    """Where one cell runs at a time: a target (its label; None: the command's one target) and a GPU."""

    target: str | None = None
    gpu: str | None = None

    def describe(self) -> str:
        where = [] if self.target is None else [f"on {self.target}"]
        return " ".join(where + ([] if self.gpu is None else [f"GPU {self.gpu}"]))


class TargetLost(Exception):  # noqa: N818 - an event, not an error of the cell: the cell runs again elsewhere
    """Raised by a ``RunCell`` when the cell failed because its target went away (engine stopped,
    container removed or stopped): the cell goes back to the queue and the target is used no more.

    ``broken_connection``: the target still answers, but the connection to its engine broke under
    the run (an ``ssh://`` transport's pipe, say); the cell goes back to the queue and the target
    stays in use, up to ``BROKEN_CONNECTIONS_ALLOWED`` times, then it counts as lost."""

    def __init__(self, reason: str, run_id: str | None = None, broken_connection: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.run_id = run_id
        self.broken_connection = broken_connection
        self.attempts: list[dict] = []  # the cell's attempts, this one included (set by the sweep)


BROKEN_CONNECTIONS_ALLOWED = 1  # per target and sweep; the next one makes it lost

RunCell = Callable[[str, Profile, Slot], tuple[str | None, str, str | None]]
"""(cell id, the cell's profile, slot) -> (run id, status, reason); status valid|invalid|partial|failed.
Raises ``TargetLost`` when the slot's target went away."""
AssessRun = Callable[[str, Profile], CellSampling]
"""(run id of a valid cell, the cell's profile) -> the sampling rule's verdict on it."""


def _run_until_enough(manifest: Manifest, cell_id: str, profile: Profile, slot: Slot, run_cell: RunCell,
                      assess: AssessRun | None,
                      on_extend: Callable[[str, float, CellSampling], None] | None,
                      target_info: dict | None = None) -> CellRecord:
    """One cell: run it; while the rule is not met and a longer window (up to the cap) could change that,
    run it again, longer. The record keeps every attempt and the verdict of the last."""
    record = CellRecord(cell_id, dict(manifest.cells[cell_id].overrides))
    record.attempts = list(manifest.cells[cell_id].attempts)
    while True:
        try:
            run_id, status, reason = run_cell(cell_id, profile, slot)
        except TargetLost as lost:
            status = "connection broke" if lost.broken_connection else "lost"
            record.attempts.append({"run_id": lost.run_id, "duration_s": profile.duration_s, "status": status,
                                    "target": slot.target, "gpu": slot.gpu, "reason": lost.reason})
            lost.attempts = record.attempts
            raise
        except XSchedOpsError as err:
            run_id, status, reason = None, "failed", err.one_line()
        record.run_id, record.status, record.reason, record.gpu = run_id, status, reason, slot.gpu
        record.target = dict(target_info) if target_info else None
        record.duration_s = profile.duration_s
        attempt = {"run_id": run_id, "duration_s": profile.duration_s, "status": status, "target": slot.target,
                   "gpu": slot.gpu}
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
              on_extend: Callable[[str, float, CellSampling], None] | None = None,
              targets: dict[str, dict] | None = None,
              on_target_lost: Callable[[str, str, str, bool], None] | None = None,
              on_stopping: Callable[[int], None] | None = None) -> Manifest:
    """Run every cell left on the slots (each target x each GPU), one cell per slot at a time; the
    manifest is written after each cell.

    ``targets`` maps each target's label to what a record keeps of it (``None``: one target, not
    named). A cell whose target is lost (``run_cell`` raises ``TargetLost``) goes back to the front of
    the queue for another target; the lost target's slots take no more cells, and the loss is kept in
    the manifest (``target_events``). Cells no target was left to run stay as they were (pending).

    With ``assess``, a valid cell is judged by the sampling rule and, below the manifest's cap, rerun
    with a longer window until it is met (``xsched_ops/sweep/sampling.py``)."""
    manifest = plan.manifest
    target_labels: list[str | None] = list(targets) if targets else [None]
    slots = [Slot(label, gpu) for label in target_labels for gpu in (gpus or [None])]
    manifest.write(plan.folder)
    changed = threading.Condition()
    pending = list(plan.to_run)
    in_flight = [0]
    lost: set[str | None] = set()
    broken: dict[str | None, int] = {}  # broken connections per target
    stopping = threading.Event()  # Ctrl-C: no new cell starts

    def next_cell(slot: Slot) -> str | None:
        """The next cell for ``slot``; None when its target is lost or nothing is left, nor can come back."""
        with changed:
            while True:
                if slot.target in lost or stopping.is_set():
                    return None
                if pending:
                    in_flight[0] += 1
                    return pending.pop(0)
                if not in_flight[0]:
                    return None
                changed.wait()  # a cell in flight elsewhere may come back (its target lost)

    def worker(slot: Slot) -> None:
        while (cell_id := next_cell(slot)) is not None:
            info = (targets or {}).get(slot.target) if slot.target is not None else None
            try:
                record = _run_until_enough(manifest, cell_id, plan.profiles[cell_id], slot, run_cell, assess,
                                           on_extend, info)
            except TargetLost as err:
                with changed:
                    broken[slot.target] = broken.get(slot.target, 0) + err.broken_connection
                    keep = err.broken_connection and broken[slot.target] <= BROKEN_CONNECTIONS_ALLOWED
                    first = slot.target not in lost and not keep
                    if not keep:
                        lost.add(slot.target)
                    returned = manifest.cells[cell_id]
                    returned.attempts, returned.status = err.attempts, "pending"
                    returned.reason = f"not run: {slot.target or 'its target'} was lost ({err.reason})"
                    manifest.target_events.append({"target": slot.target, "gpu": slot.gpu, "cell": cell_id,
                                                   "kind": "connection broke" if keep else "lost",
                                                   "run_id": err.run_id, "reason": err.reason, "wall": time.time()})
                    if slot.target in manifest.targets and not keep:
                        manifest.targets[slot.target].update(state="lost", reason=err.reason)
                    pending.insert(0, cell_id)
                    in_flight[0] -= 1
                    manifest.write(plan.folder)
                    changed.notify_all()
                if on_target_lost is not None and (first or keep):
                    on_target_lost(slot.target or "the target", cell_id, err.reason, keep)
                if keep:
                    continue
                return
            except BaseException:
                with changed:
                    in_flight[0] -= 1
                    changed.notify_all()
                raise
            with changed:
                manifest.cells[cell_id] = record
                in_flight[0] -= 1
                manifest.write(plan.folder)
                changed.notify_all()
            if on_cell is not None:
                on_cell(record)

    if len(slots) == 1:
        worker(slots[0])
        return manifest
    # Ctrl-C reaches the main thread only: it stops new cells; the cells running end and are recorded.
    with ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="sweep-slot") as pool:
        futures = []
        try:
            futures.extend(pool.submit(worker, slot) for slot in slots)
            # Waits with a timeout: a signal the OS hands to a worker thread runs its handler in the main
            # thread only once that thread runs Python code again.
            while wait(futures, timeout=0.25).not_done:
                pass
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            with changed:
                stopping.set()
                changed.notify_all()
                running = in_flight[0]
            if on_stopping is not None:
                on_stopping(running)
            raise
    return manifest


def cells_not_run(manifest: Manifest) -> list[str]:
    """Cells that never got a status this far (no target was left to run them)."""
    return [cell_id for cell_id in manifest.order if manifest.cells[cell_id].status == "pending"]
