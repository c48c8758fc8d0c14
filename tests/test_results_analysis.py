"""Analysis of one trial from event files written as FORMAT.md says, and the validity rules."""

from __future__ import annotations

import pytest
from test_results_builders import write_run, write_trial

from xsched_ops.results import analyze_trial


def codes(trial, severity=None):
    return {f.code for f in trial.findings if severity is None or f.severity == severity}


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path, "run-a")


def test_steady_trial_statistics(run_dir):
    # 20 requests at 1 req/s, latencies a permutation of 1..20 ms: hand-computed percentiles (type 7).
    trial_dir = write_trial(run_dir, 0, "baseline", duration_s=20.0, rate=1.0,
                            latency_ms=lambda seq, _: float((seq * 7) % 20 + 1), issue_delay_ms=0.5,
                            service_ms=0.5)
    trial = analyze_trial(trial_dir)
    high = trial.high
    assert high.requests == 20 and high.completed_in_window == 20 and high.unfinished == 0
    assert high.latency_ms.p50 == pytest.approx(10.5)
    assert high.latency_ms.p90 == pytest.approx(18.1)
    assert high.latency_ms.p99 == pytest.approx(19.81)
    assert high.latency_ms.max == pytest.approx(20.0)
    assert high.latency_ms.mean == pytest.approx(10.5)
    assert high.issue_delay_ms.p50 == pytest.approx(0.5)
    assert high.service_ms.max == pytest.approx(0.5)
    assert high.achieved_rate == pytest.approx(1.0)
    assert high.achieved_fraction == pytest.approx(1.0)
    assert high.sla_violations == 0 and high.sla_violation_pct == 0.0
    assert high.load_sustained and not high.trend.queue_grows
    assert trial.valid, trial.findings
    assert "samples-few-p99" in codes(trial, "warning")
    assert "simulated" in codes(trial, "note")


def test_low_priority_clipped_to_window(run_dir):
    # 0.5 s iterations starting at -0.25 s: the window [0, 20) holds exactly 40 iterations' worth;
    # whole ones are those from 0.25 to 19.25 (39); the edges count by their share.
    trial_dir = write_trial(run_dir, 0, "baseline", low_iter_s=0.5, low_start_s=-0.25, low_batch=1024)
    low = analyze_trial(trial_dir).low
    assert low.iterations_in_window == pytest.approx(40.0)
    assert low.whole_iterations_in_window == 39
    assert low.iter_per_s == pytest.approx(2.0)
    assert low.images_per_s == pytest.approx(2048.0)
    assert low.mean_iteration_ms == pytest.approx(500.0)
    assert low.batch == 1024


def test_sla_violations_and_percent(run_dir):
    # every 4th request takes 150 ms (> 100 ms SLA): 100 of 400.
    trial_dir = write_trial(run_dir, 0, "baseline", latency_ms=lambda seq, _: 150.0 if seq % 4 == 0 else 5.0)
    high = analyze_trial(trial_dir).high
    assert high.sla_violations == 100
    assert high.sla_violation_pct == pytest.approx(25.0)


def test_fifo_collapse_is_recorded_not_invalid(run_dir):
    # Latency grows 400 ms per second of run: the queue never drains (the seed's native FIFO).
    trial_dir = write_trial(run_dir, 0, "baseline", latency_ms=lambda _, t: 5.0 + 400.0 * t)
    trial = analyze_trial(trial_dir)
    high = trial.high
    assert high.trend.queue_grows
    assert high.trend.slope_ms_per_s == pytest.approx(400.0)
    # done = 1.4 t + 0.005 < 20  ->  t < 14.2821...  ->  seq <= 285
    assert high.completed_in_window == 286
    assert high.achieved_rate == pytest.approx(14.3)
    assert not high.load_sustained
    assert "load-not-sustained" in codes(trial, "warning")
    assert trial.valid  # a collapsing baseline is a result, not a broken measurement


def test_generator_behind_is_invalid(run_dir):
    # The generator issues each request later and later: 5 % of the trace is issued after the window.
    trial_dir = write_trial(run_dir, 0, "baseline", issue_delay_ms=lambda _, t: 60.0 * t)
    trial = analyze_trial(trial_dir)
    assert "generator-behind" in codes(trial, "error")
    assert not trial.valid


def test_censored_requests_are_lower_bounds(run_dir):
    trial_dir = write_trial(run_dir, 0, "baseline", unserved_from_s=19.0)
    trial = analyze_trial(trial_dir)
    high = trial.high
    assert high.unfinished == 20
    assert high.latency_is_lower_bound
    # unserved requests count at end_s - intended = 25 - t (> 5 s)
    assert high.latency_ms.max == pytest.approx(25_000.0 - 19_000.0)
    assert not high.load_sustained
    assert "latency-lower-bound" in codes(trial, "note")


def test_xsched_role_without_shim_is_invalid(run_dir):
    trial = analyze_trial(write_trial(run_dir, 0, "xsched", shim={"high": True, "low": False}))
    assert not trial.valid
    missing = [f for f in trial.findings if f.code == "shim-missing"]
    assert [f.role for f in missing] == ["low"]


def test_xsched_with_shim_everywhere_is_valid(run_dir):
    trial = analyze_trial(write_trial(run_dir, 0, "xsched"))
    assert trial.valid, trial.findings
    assert trial.roles["high"].shim_mapped and trial.roles["high"].xsched_env["XSCHED_SCHEDULER"] == "GLB"
    assert trial.meta.expected_xsched


def test_sim_device_refusing_xsched_is_invalid(run_dir):
    trial = analyze_trial(write_trial(run_dir, 0, "xsched", sim_active={"high": True, "low": False}))
    assert "xsched-inactive" in codes(trial, "error")


@pytest.mark.parametrize("mode", ["baseline", "standalone", "priority-streams"])
def test_native_mode_with_shim_is_invalid(run_dir, mode):
    trial = analyze_trial(write_trial(run_dir, 0, mode, shim={"high": True, "low": False}))
    assert "shim-unexpected" in codes(trial, "error")
    assert not trial.valid


def test_dead_role_and_partial_trial_are_invalid(run_dir):
    trial = analyze_trial(write_trial(run_dir, 0, "baseline", ended={"low": False},
                                      status="partial", reason="role low died"))
    assert {"role-died", "trial-partial", "launcher-exit"} <= codes(trial, "error")
    assert trial.low is not None  # what was measured is still analysed


def test_missing_role_file_is_invalid(run_dir):
    trial = analyze_trial(write_trial(run_dir, 0, "baseline", write_low=False))
    assert "role-missing" in codes(trial, "error")
    assert "no-closed-loop-role" in codes(trial, "error")


def test_standalone_needs_no_low_role(run_dir):
    trial = analyze_trial(write_trial(run_dir, 0, "standalone"))
    assert trial.valid, trial.findings
    assert trial.low is None


def test_sample_count_thresholds(run_dir):
    # 700 samples: enough for P99 (662), not for P99.9 (6636)
    trial = analyze_trial(write_trial(run_dir, 0, "baseline", duration_s=35.0, rate=20.0))
    assert trial.high.latency_ms.count == 700
    assert "samples-few-p99" not in codes(trial)
    assert "samples-few-p999" in codes(trial, "note")


def test_unreadable_line_is_skipped(run_dir):
    trial = analyze_trial(write_trial(run_dir, 0, "baseline", extra_high_lines=['{"event": "sample", "ro']))
    assert trial.high.requests == 400
    assert "unreadable-lines" in codes(trial, "note")
    assert trial.valid


def test_missing_trial_record_is_invalid(run_dir):
    trial_dir = write_trial(run_dir, 0, "baseline")
    (trial_dir / "trial.json").unlink()
    trial = analyze_trial(trial_dir)
    assert trial.mode == "baseline"
    assert "trial-meta-missing" in codes(trial, "error")


def test_requests_never_served_late_mean_the_queue_grows(run_dir):
    # Nothing after 5 s is ever served: no completed sample in the last third to take a median of.
    trial = analyze_trial(write_trial(run_dir, 0, "baseline", unserved_from_s=5.0))
    assert trial.high.trend.queue_grows and trial.high.trend.last_third_median_ms is None
    message = next(f.message for f in trial.findings if f.code == "load-not-sustained")
    assert "never served" in message
