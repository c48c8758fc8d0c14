"""Comparison: the seed's example, tier boundaries, refusal of invalid runs, JSON, the bar chart."""

from __future__ import annotations

import json

import pytest
from test_results_builders import PROFILE, write_run, write_trial

from xsched_ops.cli import invoke
from xsched_ops.errors import InvalidRunError, ResultsError
from xsched_ops.results import SEED_TIERS, compare, finalize_run, tiers_from_profile
from xsched_ops.results.compare import (
    COMPARISON_VERSION,
    ModeBar,
    latency_tier,
    percent_change,
    throughput_tier,
    worse_tier,
)
from xsched_ops.results.models import Interval
from xsched_ops.results.render import bar_chart_lines


def seed_runs(tmp_path, repeats=1, baseline_shim=None):
    """Baseline P99 574.50 ms and low 1.97 iter/s; XSched P99 45.00 ms and low 1.75 iter/s (the seed)."""
    base = write_run(tmp_path, "run-base", created_wall=1000.0)
    under = write_run(tmp_path, "run-xsched", created_wall=2000.0)
    for repeat in range(repeats):
        jitter = repeat * 10.0
        write_trial(base, repeat, "baseline", latency_ms=574.5 + jitter, low_iter_s=1 / 1.97, repeat=repeat,
                    shim=baseline_shim)
        write_trial(under, repeat, "xsched", latency_ms=45.0 + jitter / 10, low_iter_s=1 / 1.75, repeat=repeat)
    return finalize_run(base), finalize_run(under)


def test_seed_example_is_excellent(tmp_path):
    baseline, xsched = seed_runs(tmp_path)
    comparison = compare(baseline, xsched)
    rows = {(row.section, row.metric, row.unit): row for row in comparison.rows}
    p99 = rows[("high", "P99 latency", "ms")]
    assert p99.baseline.mean == pytest.approx(574.5) and p99.xsched.mean == pytest.approx(45.0)
    assert f"{p99.change_pct:+.1f}%" == "-92.2%"
    low = rows[("low", "Throughput", "iter/s")]
    assert low.baseline.mean == pytest.approx(1.97) and low.xsched.mean == pytest.approx(1.75)
    assert f"{low.change_pct:+.1f}%" == "-11.2%"
    assert comparison.p99_improvement_pct == pytest.approx(92.1671, abs=1e-3)
    assert comparison.high_latency_tier == "excellent"
    assert comparison.low_throughput_tier == "excellent"
    assert comparison.tier == "excellent"
    assert comparison.verdict.startswith("SUMMARY: high priority latency EXCELLENT (improved 92%), "
                                         "low priority throughput EXCELLENT (kept 89%)")
    assert comparison.low_batch == 1024 and comparison.target_rate == 20.0
    assert any("single repeat" in warning for warning in comparison.warnings)
    assert [bar.mode for bar in comparison.bars] == ["baseline", "xsched"]


@pytest.mark.parametrize(("p99", "improvement", "expected"), [
    (45.0, 92.2, "excellent"),
    (50.0, 95.0, "good"),          # P99 must be strictly under 50 ms
    (49.99, 90.0, "good"),         # improvement must be strictly over 90 %
    (49.99, 90.000001, "excellent"),
    (99.9, 80.0, "acceptable"),
    (199.9, 60.5, "acceptable"),
    (200.0, 99.0, "fail"),
    (150.0, 60.0, "fail"),
    (None, 99.0, "fail"),
])
def test_latency_tier_boundaries(p99, improvement, expected):
    assert latency_tier(p99, improvement, SEED_TIERS) == expected


@pytest.mark.parametrize(("loss", "expected"), [
    (11.2, "excellent"), (20.0, "good"), (19.999, "excellent"), (30.0, "acceptable"), (49.9, "acceptable"),
    (50.0, "fail"), (-5.0, "excellent"), (None, "fail"),
])
def test_throughput_tier_boundaries(loss, expected):
    assert throughput_tier(loss, SEED_TIERS) == expected


def test_exact_ninety_percent_is_not_more_than_ninety():
    # 0.9 * 100 is 90.00000000000001 in binary floating point; the tier must not depend on that.
    change = percent_change(500.0, 50.0)
    assert change == -90.0
    assert latency_tier(49.0, -percent_change(490.0, 49.0), SEED_TIERS) == "good"
    assert worse_tier("excellent", "acceptable", SEED_TIERS) == "acceptable"
    assert worse_tier("fail", "good", SEED_TIERS) == "fail"


def test_tiers_from_profile_shapes():
    criteria = tiers_from_profile(PROFILE)
    assert criteria == SEED_TIERS
    custom = tiers_from_profile({"tiers": {"good": {"p99_ms": 10, "p99_improvement_pct": 5,
                                                    "low_throughput_loss_pct": 1}}})
    assert [tier.name for tier in custom.tiers] == ["good"]
    assert tiers_from_profile({"name": "x"}) is None


def test_profile_model_tiers_are_read():
    profiles = pytest.importorskip("xsched_ops.profiles")
    loader = getattr(profiles, "load_profile", None)
    if loader is None:
        pytest.skip("xsched_ops.profiles has no load_profile yet")
    try:
        profile = loader("intensive")
    except Exception as err:  # the profile module is still being written
        pytest.skip(f"cannot load the intensive profile yet: {err}")
    assert tiers_from_profile(profile) == SEED_TIERS


def test_invalid_xsched_run_is_refused(tmp_path):
    baseline, _ = seed_runs(tmp_path)
    broken = write_run(tmp_path, "run-broken")
    write_trial(broken, 0, "xsched", shim={"high": True, "low": False})
    with pytest.raises(InvalidRunError) as caught:
        compare(baseline, finalize_run(broken))
    assert "shim" in caught.value.message
    assert "xsched-ops doctor --container zhenflashinfer_v1" in caught.value.hint


def test_invalid_baseline_is_refused_through_the_cli(tmp_path, capsys):
    seed_runs(tmp_path, baseline_shim={"high": True, "low": True})
    code = invoke(["compare", "run-base", "run-xsched", "--results-dir", str(tmp_path)])
    assert code == InvalidRunError.exit_code == 21
    assert "doctor" in capsys.readouterr().err


def test_missing_mode_is_a_results_error(tmp_path):
    baseline, _ = seed_runs(tmp_path)
    with pytest.raises(ResultsError, match="no xsched trials"):
        compare(baseline)


def test_cli_json(tmp_path, capsys):
    seed_runs(tmp_path)
    assert invoke(["compare", "run-base", "run-xsched", "--results-dir", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == COMPARISON_VERSION == 1
    assert data["comparison"]["tier"] == "excellent"
    assert data["comparison"]["baseline_run_id"] == "run-base"


def test_cli_table_and_bar_chart(tmp_path, capsys):
    seed_runs(tmp_path)
    assert invoke(["compare", str(tmp_path / "run-base"), str(tmp_path / "run-xsched")]) == 0
    out = capsys.readouterr().out
    assert "COMPARISON: XSched vs Baseline (intensive)" in out
    assert "-92.2%" in out and "-11.2%" in out
    assert "SUMMARY: high priority latency EXCELLENT" in out
    assert "High-priority P99 latency per mode" in out and "574.50 ms" in out


def test_single_run_with_both_modes(tmp_path, capsys):
    run_dir = write_run(tmp_path, "both")
    write_trial(run_dir, 0, "standalone", latency_ms=4.0)
    write_trial(run_dir, 1, "baseline", latency_ms=574.5, low_iter_s=1 / 1.97)
    write_trial(run_dir, 2, "xsched", latency_ms=45.0, low_iter_s=1 / 1.75)
    assert invoke(["compare", "both", "--results-dir", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["comparison"]
    assert data["tier"] == "excellent"
    assert [bar["mode"] for bar in data["bars"]] == ["standalone", "baseline", "xsched"]


def test_repeats_give_intervals(tmp_path):
    baseline, xsched = seed_runs(tmp_path, repeats=3)
    comparison = compare(baseline, xsched)
    p99 = next(row for row in comparison.rows if row.metric == "P99 latency")
    assert p99.baseline.n == 3 and p99.baseline.low is not None
    assert p99.baseline.values == pytest.approx([574.5, 584.5, 594.5])
    assert comparison.repeats_baseline == comparison.repeats_xsched == 3
    assert not any("single repeat" in warning for warning in comparison.warnings)


def test_collapsed_baseline_is_compared_with_a_prominent_warning(tmp_path):
    base = write_run(tmp_path, "collapse")
    write_trial(base, 0, "baseline", latency_ms=lambda _, t: 5.0 + 400.0 * t, low_iter_s=0.5)
    write_trial(base, 1, "xsched", latency_ms=20.0, low_iter_s=0.55)
    comparison = compare(finalize_run(base))
    assert comparison.warnings[0].startswith("LOAD NOT SUSTAINED (baseline)")
    assert "baseline did not sustain the offered load" in comparison.verdict
    achieved = next(row for row in comparison.rows if row.metric == "Achieved / target")
    assert achieved.baseline.mean == pytest.approx(71.5)


def test_bar_chart_lines():
    bars = [ModeBar(label="baseline", mode="baseline", run_id="a", p99_ms=Interval(n=1, mean=574.5, method="n=1"),
                    valid=True),
            ModeBar(label="xsched", mode="xsched", run_id="b", p99_ms=Interval(n=1, mean=45.0, method="n=1"),
                    valid=True),
            ModeBar(label="standalone", mode="standalone", run_id="a", p99_ms=Interval(n=0, mean=None,
                                                                                          method="no data"),
                    valid=False)]
    lines = bar_chart_lines(bars, width=40)
    assert lines[1].count("█") == 40
    # 45 / 574.5 * 40 = 3.13 cells: 3 full blocks and a partial one
    assert lines[2].count("█") == 3
    assert "no valid data  (INVALID)" in lines[3]
