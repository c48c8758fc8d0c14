"""Sweeps: the grid, the seeded order, the manifest and resuming (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xsched_ops.errors import ProfileError, UsageError
from xsched_ops.experiment.sweep import MANIFEST, cells_of, parse_grid, plan_sweep, run_sweep, seeded_order
from xsched_ops.profiles import load_profile


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

    def on_gpu(cell_id, cell_profile, gpu):
        seen[cell_id] = gpu
        return "r", "valid", None

    manifest = run_sweep(plan, on_gpu, ["0", "1"])
    assert set(seen) == set(plan.to_run) and set(seen.values()) <= {"0", "1"}
    assert {record.gpu for record in manifest.cells.values()} <= {"0", "1"}


def test_sweep_without_grid_uses_the_profiles_sweep_table(tmp_path: Path, capsys) -> None:
    from xsched_ops.cli import invoke
    from xsched_ops.profiles import find_profile

    path = tmp_path / "swept.toml"
    path.write_text(find_profile("intensive").read_text() + '\n[sweep]\nmodes = ["baseline"]\nrepeat = 2\nseed = 9\n'
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

    assert invoke(["sweep", "intensive", "--dry-run", "--sweep-dir", str(tmp_path)]) == UsageError.exit_code
    err = capsys.readouterr().err
    assert "no sweep.grid table and no --grid" in err and "Traceback" not in err


def test_a_cap_shorter_than_the_window_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--max-duration 10 is shorter than the window"):
        plan_sweep(tmp_path, load_profile("intensive", ["duration_s=30"]), parse_grid(["low.batch=8"]), ["baseline"],
                   1, 1, "sim", None, max_duration_s=10.0)
    with pytest.raises(ProfileError, match="duration_s"):
        plan_sweep(tmp_path, load_profile("intensive", ["duration_s=30"]), parse_grid(["high.rate=2000"]),
                   ["baseline"], 1, 1, "sim", None, max_duration_s=86400.0)  # 2000 req/s x 1 day: too many
