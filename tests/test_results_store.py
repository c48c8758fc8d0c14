"""Run folders: records, finalize (also partial), listing, loading, the latest valid baseline, CLI."""

from __future__ import annotations

import json

import pytest
from test_results_builders import write_run, write_trial

from xsched_ops.cli import invoke
from xsched_ops.errors import ResultsError
from xsched_ops.results import (
    SCHEMA_VERSION,
    RunMeta,
    TrialMeta,
    finalize_run,
    latest_valid_run,
    list_runs,
    load_run,
    trial_dir_for,
    write_run_meta,
    write_trial_meta,
)
from xsched_ops.results.stats import t_critical_95


def test_records_round_trip(tmp_path):
    meta = TrialMeta(mode="xsched", repeat=2, placement="processes", backend="sim", simulated=True,
                     duration_s=20.0, role_env={"high": {"XSCHED_SCHEDULER": "GLB"}, "low": {}})
    path = write_trial_meta(trial_dir_for(tmp_path / "r", 5, "xsched"), meta)
    assert path.parent.name == "05-xsched"
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and raw["expected_xsched"] is True
    assert TrialMeta.model_validate(raw) == meta
    assert TrialMeta(mode="baseline", repeat=0, placement="processes", backend="sim", simulated=True,
                     duration_s=1.0).expected_xsched is False
    run = RunMeta(run_id="r", profile_name="intensive", target_name="local", profile={"sla_ms": 80})
    assert RunMeta.model_validate_json(write_run_meta(tmp_path / "r", run).read_text()) == run
    with pytest.raises(ValueError):
        trial_dir_for(tmp_path, 0, "fifo")


def test_finalize_writes_versioned_result_and_can_run_again(tmp_path):
    run_dir = write_run(tmp_path, "run-a")
    write_trial(run_dir, 0, "baseline")
    write_trial(run_dir, 1, "xsched")
    result = finalize_run(run_dir)
    raw = json.loads((run_dir / "result.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert result.status == "complete" and result.valid and result.simulated
    assert list(result.modes) == ["baseline", "xsched"]
    # a third trial arrives later, dying half-way: finalize again marks the run partial and invalid
    write_trial(run_dir, 2, "baseline", repeat=1, ended={"high": False}, status="partial", reason="interrupted")
    again = finalize_run(run_dir)
    assert again.status == "partial" and not again.valid
    assert not again.mode_valid("baseline") and again.mode_valid("xsched")
    assert json.loads((run_dir / "result.json").read_text())["status"] == "partial"


def test_sla_comes_from_the_profile(tmp_path):
    run_dir = write_run(tmp_path, "run-a", profile={"sla_ms": 4})
    write_trial(run_dir, 0, "baseline", latency_ms=5.0)
    result = finalize_run(run_dir)
    assert result.trials[0].high.sla_ms == 4.0
    assert result.trials[0].high.sla_violations == 400


def test_mode_statistics_over_repeats(tmp_path):
    run_dir = write_run(tmp_path, "run-a")
    for repeat, latency in enumerate([10.0, 20.0, 30.0]):
        write_trial(run_dir, repeat, "baseline", latency_ms=latency, repeat=repeat)
    write_trial(run_dir, 3, "baseline", repeat=3, ended={"low": False})  # invalid: left out
    summary = finalize_run(run_dir).modes["baseline"]
    assert summary.valid_trials == ["00-baseline", "01-baseline", "02-baseline"]
    assert summary.p99_ms.values == pytest.approx([10.0, 20.0, 30.0])
    half = t_critical_95(2) * 10.0 / 3 ** 0.5
    assert summary.p99_ms.mean == pytest.approx(20.0)
    assert summary.p99_ms.low == pytest.approx(20.0 - half) and summary.p99_ms.high == pytest.approx(20.0 + half)
    assert summary.samples == 1200


def test_partial_run_without_run_record(tmp_path):
    run_dir = tmp_path / "broken"
    write_trial(run_dir, 0, "baseline")
    result = finalize_run(run_dir)
    assert not result.valid
    assert result.findings[0].code == "run-meta-missing"


def test_list_load_and_latest_valid(tmp_path):
    old = write_run(tmp_path, "20250101-000000-intensive", created_wall=1000.0)
    write_trial(old, 0, "baseline")
    new = write_run(tmp_path, "20250102-000000-intensive", created_wall=2000.0)
    write_trial(new, 0, "baseline", shim={"high": True, "low": False})  # invalid baseline
    write_trial(new, 1, "xsched")
    other = write_run(tmp_path, "20250103-000000-intensive", created_wall=3000.0, target_name="elsewhere")
    write_trial(other, 0, "baseline")
    finalize_run(old)

    listings = list_runs(tmp_path)
    assert [item.run_id for item in listings] == ["20250103-000000-intensive", "20250102-000000-intensive",
                                                  "20250101-000000-intensive"]
    assert listings[1].modes == ("baseline", "xsched") and listings[1].valid is False
    assert listings[2].finalized and not listings[1].finalized

    assert load_run("20250101-000000-intensive", tmp_path).run_id == "20250101-000000-intensive"
    assert load_run(str(new)).run_id == "20250102-000000-intensive"
    assert load_run(str(old / "result.json")).valid

    baseline = latest_valid_run("zhenflashinfer_v1", "intensive", "baseline", tmp_path)
    assert baseline is not None and baseline.run_id == "20250101-000000-intensive"
    xsched = latest_valid_run("zhenflashinfer_v1", "intensive", "xsched", tmp_path)
    assert xsched is not None and xsched.run_id == "20250102-000000-intensive"
    assert latest_valid_run("zhenflashinfer_v1", "original", "baseline", tmp_path) is None
    assert latest_valid_run("nobody", "intensive", "baseline", tmp_path) is None


def test_stale_result_is_reanalysed(tmp_path):
    run_dir = write_run(tmp_path, "run-a")
    write_trial(run_dir, 0, "baseline")
    finalize_run(run_dir)
    import os
    import time

    later = time.time() + 5
    write_trial(run_dir, 1, "xsched")
    for path in (run_dir / "trials" / "01-xsched").iterdir():
        os.utime(path, (later, later))
    assert "xsched" in load_run(run_dir).modes


def test_newer_schema_and_unknown_run_are_refused(tmp_path):
    run_dir = write_run(tmp_path, "run-a")
    write_trial(run_dir, 0, "baseline")
    (run_dir / "result.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ResultsError, match="schema version"):
        load_run(run_dir)
    with pytest.raises(ResultsError, match="no run"):
        load_run("missing", tmp_path)
    assert invoke(["results", "show", "missing", "--results-dir", str(tmp_path)]) == ResultsError.exit_code


def test_results_cli_list_and_show_json(tmp_path, capsys):
    run_dir = write_run(tmp_path, "run-a")
    write_trial(run_dir, 0, "baseline")
    assert invoke(["results", "list", "--results-dir", str(tmp_path), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["version"] == SCHEMA_VERSION
    assert listing["runs"][0]["run_id"] == "run-a" and listing["runs"][0]["modes"] == ["baseline"]
    assert invoke(["results", "show", "run-a", "--results-dir", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == SCHEMA_VERSION and shown["result"]["trials"][0]["trial_id"] == "00-baseline"
    assert invoke(["results", "show", "run-a", "--results-dir", str(tmp_path)]) == 0
    assert "00-baseline" in capsys.readouterr().out
    assert invoke(["results", "finalize", "run-a", "--results-dir", str(tmp_path)]) == 0
    assert (run_dir / "result.json").is_file()
