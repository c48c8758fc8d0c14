"""Enough samples, decided by rule: a cell's P99 by MLPerf LoadGen's early stopping, extended windows
(real run folders written by the test builders and analysed; no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_results_builders import write_run, write_trial

from xsched_ops.profiles import load_profile
from xsched_ops.results import finalize_run
from xsched_ops.results.stats import min_within_bound
from xsched_ops.results.store import load_run
from xsched_ops.sweep.runner import MANIFEST, parse_grid, plan_sweep, run_sweep
from xsched_ops.sweep.sampling import assess_run, extended_duration


def _run(root: Path, run_id: str, duration_s: float, latency_ms=5.0, repeats: int = 1):
    run_dir = write_run(root, run_id)
    for repeat in range(repeats):
        latency = latency_ms[repeat] if isinstance(latency_ms, list) else latency_ms
        write_trial(run_dir, repeat, "baseline", duration_s=duration_s, latency_ms=latency, repeat=repeat)
    return finalize_run(run_dir)


def test_too_few_requests_for_p99_say_how_many_more(tmp_path: Path) -> None:
    result = _run(tmp_path, "short", 20.0)  # 20 req/s x 20 s = 400 requests, none over the SLA
    assessment = assess_run(result, sla_ms=100.0)
    mode = assessment.modes["baseline"]
    assert mode.requests == [400] and mode.over_sla == [0]
    assert mode.needed == [min_within_bound(0)] == [459]
    assert not mode.rule_met and mode.more_requests_needed == 59
    assert assessment.unmet == ["baseline: P99 rule not met: 0 of 400 requests over the SLA (100 ms) need 459 "
                                "requests (59 more) for P99 at 99 % confidence"]
    assert assessment.worth_extending
    assert extended_duration(20.0, assessment, cap_s=600.0) == 30.0  # at least 1.5x
    assert extended_duration(20.0, assessment, cap_s=25.0) == 25.0  # never past the cap
    assert extended_duration(25.0, assessment, cap_s=25.0) is None


def test_enough_requests_meet_the_rule(tmp_path: Path) -> None:
    result = _run(tmp_path, "long", 30.0)  # 600 requests, none over
    assessment = assess_run(result, sla_ms=100.0)
    assert assessment.met and assessment.modes["baseline"].rule_met
    assert extended_duration(30.0, assessment, cap_s=600.0) is None


def test_p99_over_the_sla_is_decided_and_not_extended(tmp_path: Path) -> None:
    # every 10th request takes 150 ms: 10 % over a 100 ms SLA, P99 is over it at 99 % confidence
    result = _run(tmp_path, "over", 20.0, latency_ms=lambda seq, _: 150.0 if seq % 10 == 0 else 5.0)
    assessment = assess_run(result, sla_ms=100.0)
    mode = assessment.modes["baseline"]
    assert mode.over_sla == [40] and mode.p99_over_sla and not mode.rule_met
    assert assessment.met and not assessment.worth_extending
    assert extended_duration(20.0, assessment, cap_s=600.0) is None


def test_interval_target_across_repeats(tmp_path: Path) -> None:
    result = _run(tmp_path, "spread", 30.0, repeats=3,
                  latency_ms=[lambda seq, t, r=r: 5.0 + (seq % 7) * (1.0 + r) for r in range(3)])
    loose = assess_run(result, sla_ms=100.0, target_interval_pct=100.0)
    assert loose.modes["baseline"].interval_met is True and loose.met
    half = loose.modes["baseline"].interval_half_width_pct
    assert half is not None and half > 0
    tight = assess_run(result, sla_ms=100.0, target_interval_pct=half / 2)
    assert tight.modes["baseline"].interval_met is False and not tight.met
    assert any("P99 interval across 3 repeats" in line for line in tight.unmet)
    assert tight.growth_factor() >= 4.0 - 1e-9  # half width ~ 1/sqrt(window): twice as narrow needs 4x
    one = assess_run(_run(tmp_path, "one", 30.0), sla_ms=100.0, target_interval_pct=1.0)
    assert one.modes["baseline"].interval_met is None and one.met  # one repeat: not judged


def _sweep_with_builder_runs(tmp_path: Path, cap: float | None):
    profile = load_profile("intensive", ["duration_s=20"])
    runs_dir = tmp_path / "runs"
    durations: list[float] = []

    def run_cell(cell_id, cell_profile, gpu):
        durations.append(cell_profile.duration_s)
        run_id = f"run-{len(durations)}"
        _run(runs_dir, run_id, cell_profile.duration_s)
        return run_id, "valid", None

    def assess(run_id, cell_profile):
        return assess_run(load_run(run_id, runs_dir), cell_profile.sla_ms)

    plan = plan_sweep(tmp_path / "sweep", profile, parse_grid(["low.batch=8"]), ["baseline"], 1, 1, "sim", None,
                      max_duration_s=cap)
    manifest = run_sweep(plan, run_cell, assess=assess)
    return manifest, durations


def test_a_cell_grows_its_window_until_the_rule_is_met(tmp_path: Path) -> None:
    manifest, durations = _sweep_with_builder_runs(tmp_path, cap=60.0)
    assert durations == [20.0, 30.0]
    record = manifest.cells["low.batch=8"]
    assert record.status == "valid" and record.run_id == "run-2" and record.duration_s == 30.0
    assert [(a["run_id"], a["duration_s"], a["sampling_met"]) for a in record.attempts] == [
        ("run-1", 20.0, False), ("run-2", 30.0, True)]
    assert record.sampling["met"] and record.sampling["unmet"] == []
    stored = json.loads((tmp_path / "sweep" / MANIFEST).read_text())
    assert stored["schema_version"] == 3 and stored["max_duration_s"] == 60.0
    assert stored["cells"][0]["attempts"][1]["run_id"] == "run-2"


def test_the_cap_stops_the_growth_and_the_record_says_what_was_not_met(tmp_path: Path) -> None:
    manifest, durations = _sweep_with_builder_runs(tmp_path, cap=21.0)
    assert durations == [20.0, 21.0]  # 420 requests: still short of 459
    record = manifest.cells["low.batch=8"]
    assert record.status == "valid" and not record.sampling["met"]
    assert record.sampling["unmet"][0].startswith("baseline: P99 rule not met: 0 of 420 requests")
    assert record.sampling["unmet"][-1] == "the window reached its cap (21 s)"


def test_without_a_cap_the_rule_is_only_reported(tmp_path: Path) -> None:
    manifest, durations = _sweep_with_builder_runs(tmp_path, cap=None)
    assert durations == [20.0]
    assert manifest.cells["low.batch=8"].sampling["unmet"][0].endswith("(59 more) for P99 at 99 % confidence")


def test_each_repeat_carries_loadgens_p99_estimate(tmp_path: Path) -> None:
    # 30 s at 20 req/s = 600 requests with latencies 1..600 ms: below 662 requests, no estimate
    short = _run(tmp_path, "few", 30.0, latency_ms=lambda seq, _: float(seq + 1))
    assert assess_run(short, sla_ms=1000.0).modes["baseline"].p99_estimate_ms == [None]
    # 40 s: 800 requests, latencies 1..800 ms; the estimate is the t-th highest for the largest t with h(t) + t <= 800
    full = _run(tmp_path, "many", 40.0, latency_ms=lambda seq, _: float(seq + 1))
    [estimate] = assess_run(full, sla_ms=1000.0).modes["baseline"].p99_estimate_ms
    largest_t = max(t for t in range(1, 20) if min_within_bound(t) + t <= 800)
    assert largest_t == 1  # h(1) + 1 = 662 <= 800 < h(2) + 2 = 838
    assert estimate == pytest.approx(800.0)  # so the estimate is the maximum, above the plain P99 (792.01)


def test_the_same_sweep_with_a_larger_cap_grows_the_cells_short_of_the_rule(tmp_path: Path) -> None:
    manifest, durations = _sweep_with_builder_runs(tmp_path, cap=21.0)
    assert durations == [20.0, 21.0] and not manifest.cells["low.batch=8"].sampling["met"]
    profile = load_profile("intensive", ["duration_s=20"])
    same_cap = plan_sweep(tmp_path / "sweep", profile, parse_grid(["low.batch=8"]), ["baseline"], 1, 1, "sim", None,
                          max_duration_s=21.0)
    assert same_cap.to_run == [] and same_cap.skipped == ["low.batch=8"]  # the cap was reached: done
    larger = plan_sweep(tmp_path / "sweep", profile, parse_grid(["low.batch=8"]), ["baseline"], 1, 1, "sim", None,
                        max_duration_s=60.0)
    assert larger.to_run == ["low.batch=8"] and larger.profiles["low.batch=8"].duration_s == 32.0  # 1.5 x 21
    runs_dir = tmp_path / "runs"

    def run_cell(cell_id, cell_profile, gpu):
        durations.append(cell_profile.duration_s)
        _run(runs_dir, "run-again", cell_profile.duration_s)
        return "run-again", "valid", None

    record = run_sweep(larger, run_cell, assess=lambda run_id, p: assess_run(load_run(run_id, runs_dir),
                                                                             p.sla_ms)).cells["low.batch=8"]
    assert durations[-1] == 32.0 and record.sampling["met"] and len(record.attempts) == 3


def test_rule_verdict_words_for_the_summary_and_the_report() -> None:
    from xsched_ops.sweep.sampling import rule_verdict

    short_of = {"rule_met": False, "more_requests_needed": 399, "interval_met": False, "interval_half_width_pct": 12.34}
    assert rule_verdict(short_of) == "+399 req, +/-12%"
    assert rule_verdict(short_of, short=False) == "not met: 399 more requests; interval +/-12.3 %"
    assert rule_verdict({"rule_met": True}) == "met" and rule_verdict(None) == "-"
    assert rule_verdict({"p99_over_sla": True}, short=False) == "over SLA (decided)"
