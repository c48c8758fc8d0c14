"""Sweeps: the grid, the seeded order, the manifest and resuming (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xsched_ops.errors import ProfileError, UsageError
from xsched_ops.profiles import load_profile
from xsched_ops.sweep.manifest import read_manifest
from xsched_ops.sweep.runner import (
    MANIFEST,
    TargetLost,
    cells_not_run,
    cells_of,
    parse_grid,
    plan_sweep,
    run_sweep,
    seeded_order,
)
from xsched_ops.sweep.targets import TargetSpec, parse_target, parse_targets


def test_grid_cells_are_every_combination() -> None:
    axes = parse_grid(["low.batch=8,64", "high.rate=10,20,30"])
    cells = cells_of(axes)
    assert len(cells) == 6
    assert cells[0].assignments == ["low.batch=8", "high.rate=10"]
    assert {cell.cell_id for cell in cells} == {f"low.batch={b},high.rate={r}" for b in (8, 64) for r in (10, 20, 30)}


@pytest.mark.parametrize("expression", ["low.batch", "low.batch=", "=8,64", "low.batch=8,,64", "low.batch=8,8"])
def test_bad_grid_expressions_are_usage_errors(expression: str) -> None:
    with pytest.raises(UsageError):
        parse_grid([expression])


def test_order_is_seeded_and_a_permutation() -> None:
    cells = cells_of(parse_grid(["low.batch=1,2,4,8,16,32"]))
    first, again, other = seeded_order(cells, 7), seeded_order(cells, 7), seeded_order(cells, 8)
    assert first == again and sorted(c.cell_id for c in first) == sorted(c.cell_id for c in cells)
    assert first != other


def test_out_of_range_cell_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="low.batch"):
        plan_sweep(tmp_path, load_profile("intensive"), parse_grid(["low.batch=8,99999999"]), ["baseline"], 1, 1,
                   "sim", None)
    assert not (tmp_path / MANIFEST).exists()


def test_resume_skips_valid_cells_and_reruns_the_others(tmp_path: Path) -> None:
    profile = load_profile("intensive")
    axes = parse_grid(["low.batch=8,64,256"])
    calls: list[str] = []

    def flaky(cell_id, cell_profile, gpu):
        calls.append(cell_id)
        assert cell_profile.low.batch == int(cell_id.split("=")[1])
        return f"run-{len(calls)}", ("failed" if cell_id == "low.batch=64" else "valid"), None

    plan = plan_sweep(tmp_path, profile, axes, ["baseline"], 1, 3, "sim", None)
    assert len(plan.to_run) == 3
    run_sweep(plan, flaky)
    document = json.loads((tmp_path / MANIFEST).read_text())
    assert {cell["cell_id"]: cell["status"] for cell in document["cells"]} == {
        "low.batch=8": "valid", "low.batch=64": "failed", "low.batch=256": "valid"}

    calls.clear()
    again = plan_sweep(tmp_path, profile, axes, ["baseline"], 1, 3, "sim", None)
    assert again.to_run == ["low.batch=64"] and len(again.skipped) == 2
    run_sweep(again, lambda cell_id, cell_profile, gpu: ("run-new", "valid", None))
    assert all(cell["status"] == "valid" for cell in json.loads((tmp_path / MANIFEST).read_text())["cells"])


def test_another_sweep_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    profile = load_profile("intensive")
    plan = plan_sweep(tmp_path, profile, parse_grid(["low.batch=8,64"]), ["baseline"], 1, 1, "sim", None)
    run_sweep(plan, lambda cell_id, cell_profile, gpu: ("r", "valid", None))
    with pytest.raises(UsageError, match="holds another sweep"):
        plan_sweep(tmp_path, profile, parse_grid(["low.batch=8,128"]), ["baseline"], 1, 1, "sim", None)


def test_cells_spread_over_gpus(tmp_path: Path) -> None:
    plan = plan_sweep(tmp_path, load_profile("intensive"), parse_grid(["low.batch=1,2,4,8"]), ["baseline"], 1, 1,
                      "torch", None)
    seen: dict[str, str] = {}

    def on_gpu(cell_id, cell_profile, slot):
        seen[cell_id] = slot.gpu
        return "r", "valid", None

    manifest = run_sweep(plan, on_gpu, ["0", "1"])
    assert set(seen) == set(plan.to_run) and set(seen.values()) <= {"0", "1"}
    assert {record.gpu for record in manifest.cells.values()} <= {"0", "1"}


def test_sweep_without_grid_uses_the_profiles_sweep_table(tmp_path: Path, capsys) -> None:
    from xsched_ops.cli import invoke
    from xsched_ops.profiles import find_profile

    path = tmp_path / "swept.toml"
    path.write_text(find_profile("original").read_text() + '\n[sweep]\nmodes = ["baseline"]\nrepeat = 2\nseed = 9\n'
                    '\n[sweep.grid]\nlow.batch = [8, 64, 256]\n')
    assert invoke(["sweep", str(path), "--dry-run", "--json", "--duration", "5",
                   "--sweep-dir", str(tmp_path / "s")]) == 0
    captured = capsys.readouterr()
    plan = json.loads(captured.out)["plan"]
    assert sorted(row["cell"] for row in plan) == ["low.batch=256", "low.batch=64", "low.batch=8"]
    assert [row["cell"] for row in plan] == [c.cell_id for c in seeded_order(cells_of(parse_grid(
        ["low.batch=8,64,256"])), 9)]
    assert "1 mode(s) x 2 repeat(s)" in captured.err
    # --grid replaces the table's grid
    assert invoke(["sweep", str(path), "--dry-run", "--json", "--grid", "high.rate=10,20",
                   "--sweep-dir", str(tmp_path / "t")]) == 0
    assert {row["cell"] for row in json.loads(capsys.readouterr().out)["plan"]} == {"high.rate=10", "high.rate=20"}


def test_sweep_without_grid_or_table_is_a_usage_error(tmp_path: Path, capsys) -> None:
    from xsched_ops.cli import invoke

    assert invoke(["sweep", "original", "--dry-run", "--sweep-dir", str(tmp_path)]) == UsageError.exit_code
    err = capsys.readouterr().err
    assert "no sweep.grid table and no --grid" in err and "Traceback" not in err


def test_a_cap_shorter_than_the_window_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--max-duration 10 is shorter than the window"):
        plan_sweep(tmp_path, load_profile("intensive", ["duration_s=30"]), parse_grid(["low.batch=8"]), ["baseline"],
                   1, 1, "sim", None, max_duration_s=10.0)
    with pytest.raises(ProfileError, match="duration_s"):
        plan_sweep(tmp_path, load_profile("intensive", ["duration_s=30"]), parse_grid(["high.rate=2000"]),
                   ["baseline"], 1, 1, "sim", None, max_duration_s=86400.0)  # 2000 req/s x 1 day: too many


# -- several targets (issue 17, part 4) -------------------------------------------------------------

@pytest.mark.parametrize(("text", "spec"), [
    ("xo-1", TargetSpec("xo-1")),
    ("xo-2@unix:///run/docker2.sock", TargetSpec("xo-2", "unix:///run/docker2.sock")),
    ("gpu1@ssh://me@host:2222", TargetSpec("gpu1", "ssh://me@host:2222")),
    ("xo-3@lab-context", TargetSpec("xo-3", "lab-context")),
])
def test_target_syntax(text: str, spec: TargetSpec) -> None:
    assert parse_target(text) == spec
    assert parse_target(text).label == text


@pytest.mark.parametrize("text", ["", "@unix:///run/x.sock", "xo-1@", "unix:///run/x.sock/xo-1", "host:xo-1"])
def test_bad_targets_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--target"):
        parse_target(text)


def test_a_target_given_twice_is_refused() -> None:
    with pytest.raises(UsageError, match="given twice"):
        parse_targets(["xo-1@unix:///a.sock", "xo-2", "xo-1@unix:///a.sock"])


TWO_TARGETS = {"a": {"label": "a", "engine": "unix:///a.sock", "container": "ca", "image_id": "sha256:aa"},
               "b": {"label": "b", "engine": "unix:///b.sock", "container": "cb", "image_id": "sha256:bb"}}


def test_cells_spread_over_targets_never_two_on_one_slot(tmp_path: Path) -> None:
    import threading
    import time

    plan = plan_sweep(tmp_path, load_profile("intensive"), parse_grid(["low.batch=1,2,4,8,16,32"]), ["baseline"], 1,
                      1, "sim", None)
    busy: set[tuple] = set()
    lock = threading.Lock()
    overlaps: list[tuple] = []

    def run_cell(cell_id, cell_profile, slot):
        key = (slot.target, slot.gpu)
        with lock:
            if key in busy:
                overlaps.append(key)
            busy.add(key)
        time.sleep(0.05)
        with lock:
            busy.discard(key)
        return f"run-{cell_id}", "valid", None

    manifest = run_sweep(plan, run_cell, targets=TWO_TARGETS)
    assert not overlaps
    assert all(record.status == "valid" for record in manifest.cells.values())
    assert {record.target["label"] for record in manifest.cells.values()} == {"a", "b"}
    assert all(record.target["image_id"] in ("sha256:aa", "sha256:bb") for record in manifest.cells.values())


def test_a_lost_target_has_its_cell_run_again_elsewhere(tmp_path: Path) -> None:
    import threading

    plan = plan_sweep(tmp_path, load_profile("intensive"), parse_grid(["low.batch=1,2,4,8"]), ["baseline"], 1, 1,
                      "sim", None)
    plan.manifest.targets = {label: {**info, "state": "ok"} for label, info in TWO_TARGETS.items()}
    runs: list[tuple[str, str]] = []
    b_started = threading.Event()
    lock = threading.Lock()

    def run_cell(cell_id, cell_profile, slot):
        with lock:
            runs.append((cell_id, slot.target))
        if slot.target == "b":
            b_started.set()
            raise TargetLost("the Docker engine at unix:///b.sock stopped answering", f"lost-{cell_id}")
        b_started.wait(5)  # b takes its first cell before a runs out of cells
        return f"run-{cell_id}", "valid", None

    lost_calls: list[tuple] = []
    manifest = run_sweep(plan, run_cell, targets=TWO_TARGETS, on_target_lost=lambda *args: lost_calls.append(args))
    assert all(record.status == "valid" for record in manifest.cells.values())
    assert all(record.target["label"] == "a" for record in manifest.cells.values())
    assert len([run for run in runs if run[1] == "b"]) == 1  # a lost target takes no more cells
    lost_cell = next(cell for cell, target in runs if target == "b")
    assert [a["status"] for a in manifest.cells[lost_cell].attempts] == ["lost", "valid"]
    assert manifest.cells[lost_cell].attempts[0]["run_id"] == f"lost-{lost_cell}"
    assert lost_calls == [("b", lost_cell, "the Docker engine at unix:///b.sock stopped answering", False)]
    on_disk = read_manifest(tmp_path)
    assert on_disk is not None and on_disk.targets["b"]["state"] == "lost"
    assert [(event["target"], event["cell"]) for event in on_disk.target_events] == [("b", lost_cell)]
    # every cell valid exactly once
    assert all(sum(a["status"] == "valid" for a in on_disk.cells[c].attempts) == 1 for c in on_disk.order)


def test_cells_left_when_every_target_is_lost_stay_pending_and_resume(tmp_path: Path) -> None:
    profile = load_profile("intensive")
    axes = parse_grid(["low.batch=1,2,4"])
    plan = plan_sweep(tmp_path, profile, axes, ["baseline"], 1, 1, "sim", None)
    calls: list[str] = []

    def first_valid_then_lost(cell_id, cell_profile, slot):
        calls.append(cell_id)
        if len(calls) > 1:
            raise TargetLost("container 'ca' was removed while xsched-ops worked in it")
        return "run-1", "valid", None

    manifest = run_sweep(plan, first_valid_then_lost, targets={"a": TWO_TARGETS["a"]})
    assert len(calls) == 2 and cells_not_run(manifest) == plan.manifest.order[1:]
    assert "was removed" in (manifest.cells[calls[1]].reason or "")
    again = plan_sweep(tmp_path, profile, axes, ["baseline"], 1, 1, "sim", None)
    assert again.skipped == [calls[0]] and again.to_run == plan.manifest.order[1:]


def test_ctrl_c_during_a_sweep_over_targets_starts_no_new_cell(tmp_path: Path) -> None:
    import os
    import signal
    import threading
    import time

    plan = plan_sweep(tmp_path, load_profile("intensive"), parse_grid(["low.batch=1,2,4,8,16,32"]), ["baseline"], 1,
                      1, "sim", None)
    calls: list[str] = []
    lock = threading.Lock()
    both_running = threading.Barrier(2, timeout=10)

    def run_cell(cell_id, cell_profile, slot):
        with lock:
            calls.append(cell_id)
            first = len(calls) == 1
        if len(calls) <= 2:
            both_running.wait()
        if first:
            os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C: KeyboardInterrupt in the main thread
        time.sleep(0.3)
        return f"run-{cell_id}", "valid", None

    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, run_cell, targets=TWO_TARGETS)
    assert len(calls) == 2  # the two cells running ended; none started after the Ctrl-C
    on_disk = read_manifest(tmp_path)
    assert on_disk is not None and sorted(c for c in on_disk.order if on_disk.cells[c].status == "valid") == sorted(
        calls)


def test_a_broken_connection_reruns_the_cell_and_keeps_the_target_once(tmp_path: Path) -> None:
    plan = plan_sweep(tmp_path, load_profile("intensive"), parse_grid(["low.batch=1,2,4"]), ["baseline"], 1, 1,
                      "sim", None)
    runs: list[str] = []

    def run_cell(cell_id, cell_profile, slot):
        runs.append(cell_id)
        if len(runs) in (1, 3):  # the first break is forgiven, the second makes the target lost
            raise TargetLost("the connection to its engine broke (BrokenPipeError: [Errno 32] Broken pipe)",
                             broken_connection=True)
        return f"run-{len(runs)}", "valid", None

    manifest = run_sweep(plan, run_cell, targets={"a": TWO_TARGETS["a"]})
    first = plan.manifest.order[0]
    assert runs[:2] == [first, first]  # the same cell again, on the same target
    assert [a["status"] for a in manifest.cells[first].attempts] == ["connection broke", "valid"]
    assert [event["kind"] for event in manifest.target_events] == ["connection broke", "lost"]
    assert len(cells_not_run(manifest)) == 2 and len(runs) == 3
