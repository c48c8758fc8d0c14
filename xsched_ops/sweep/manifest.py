"""A sweep's manifest, ``sweep.json``: the plan (profile, grid, modes, repeats, seed, order), each
cell's record (its run, status, where it ran, every attempt and the sampling rule's verdict), the
targets of the last command and every target lost; written atomically."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from xsched_ops.errors import ResultsError

SWEEP_SCHEMA_VERSION = 3  # 2: cells carry their attempts and the sampling verdict; 3: targets and their losses
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
SWEEP_KIND = "xsched-ops-sweep"
MANIFEST = "sweep.json"


@dataclass
class CellRecord:
    cell_id: str
    overrides: dict[str, str]
    run_id: str | None = None
    status: str = "pending"  # pending | valid | invalid | partial | failed
    reason: str | None = None
    gpu: str | None = None
    # Where the recorded run ran: label, engine, container, container_id, image, image_id (the image's digest).
    target: dict | None = None
    duration_s: float | None = None  # the window of the run recorded (longer than planned when extended)
    attempts: list[dict] = field(default_factory=list)  # every run of the cell: run_id, duration_s, status
    sampling: dict | None = None  # the rule's verdict (CellSampling.to_json) of the run recorded


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
    max_duration_s: float | None = None  # cap of a cell's window when it is extended; None: never extended
    target_interval_pct: float | None = None  # P99 interval half width across repeats, % of the mean
    targets: dict[str, dict] = field(default_factory=dict)  # the last command's targets by label, with state
    # Every target lost, by any command: target, reason, cell (None: could not be opened), run_id, wall.
    target_events: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"schema_version": SWEEP_SCHEMA_VERSION, "kind": SWEEP_KIND, "profile": self.profile,
                "grid": self.grid, "modes": self.modes, "repeat": self.repeat, "seed": self.seed,
                "backend": self.backend, "placement": self.placement, "order": self.order,
                "created_wall": self.created_wall, "max_duration_s": self.max_duration_s,
                "target_interval_pct": self.target_interval_pct,
                "targets": self.targets, "target_events": self.target_events,
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
        if document.get("kind") != SWEEP_KIND or document.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
            raise ValueError("not a sweep manifest of a known version")
        cells = {record["cell_id"]: CellRecord(**record) for record in document["cells"]}
        return Manifest(profile=document["profile"], grid=document["grid"], modes=document["modes"],
                        repeat=document["repeat"], seed=document["seed"], backend=document["backend"],
                        placement=document.get("placement"), order=document["order"], cells=cells,
                        created_wall=document.get("created_wall", time.time()),
                        max_duration_s=document.get("max_duration_s"),
                        target_interval_pct=document.get("target_interval_pct"),
                        targets=document.get("targets") or {}, target_events=document.get("target_events") or [])
    except (ValueError, KeyError, TypeError) as err:
        raise ResultsError(f"{path} is not a readable sweep manifest ({err})",
                           "give another --sweep-dir, or remove the folder to start the sweep anew") from err
