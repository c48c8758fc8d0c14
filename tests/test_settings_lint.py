"""The settings lint (XSCHED-FACTS sections 1 and 7) and the one scheduler rule it relies on."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from xsched_ops.doctor.checks_target import check_settings
from xsched_ops.xsched import platforms
from xsched_ops.xsched.settings import effective_scheduler


def lint(env: dict[str, str], platform: str | None = "cuda") -> list[Any]:
    install = SimpleNamespace(platform=platforms.get(platform)) if platform else None
    findings = check_settings(SimpleNamespace(environment=env, install=install))  # type: ignore[arg-type]
    assert all(f.id == "settings" for f in findings)
    return findings


def failures(env: dict[str, str], platform: str | None = "cuda") -> list[Any]:
    return [f for f in lint(env, platform) if f.severity == "fail"]


# -- effective_scheduler ----------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "kind", "line"), [
    ({}, "app", "using app-managed scheduler"),
    ({"XSCHED_SCHEDULER": "APP"}, "app", "using app-managed scheduler"),
    ({"XSCHED_SCHEDULER": "GLB"}, "global", "using global scheduler"),
    ({"XSCHED_SCHEDULER": "LCL"}, "app", "using app-managed scheduler"),
    ({"XSCHED_SCHEDULER": "GLOBAL"}, "app", "using app-managed scheduler"),
    ({"XSCHED_POLICY": "GBL"}, "app", "using app-managed scheduler"),
    ({"XSCHED_POLICY": "GBL", "XSCHED_SCHEDULER": "LCL"}, "app", "using app-managed scheduler"),
    ({"XSCHED_POLICY": "GBL", "XSCHED_SCHEDULER": "GLB"}, "global", "using global scheduler"),
    ({"XSCHED_POLICY": "HPF"}, "local", "using local scheduler with policy HPF"),
    ({"XSCHED_POLICY": "HPF", "XSCHED_SCHEDULER": "LCL"}, "local", "using local scheduler with policy HPF"),
    ({"XSCHED_POLICY": "PUP", "XSCHED_SCHEDULER": "GLB"}, "local", "using local scheduler with policy PUP"),
    ({"XSCHED_POLICY": "CFS", "XSCHED_SCHEDULER": "APP"}, "local", "using local scheduler with policy CFS"),
])
def test_effective_scheduler_table(env: dict[str, str], kind: str, line: str) -> None:
    effective = effective_scheduler(env)
    assert (effective.kind, effective.log_line) == (kind, line)
    assert effective.schedules == (kind != "app")
    assert effective.reason


def test_effective_scheduler_reasons_name_what_was_ignored() -> None:
    assert "XSCHED_SCHEDULER=GLB is ignored" in effective_scheduler(
        {"XSCHED_POLICY": "HPF", "XSCHED_SCHEDULER": "GLB"}).reason
    assert "XSCHED_POLICY=GBL is not a policy" in effective_scheduler(
        {"XSCHED_POLICY": "GBL", "XSCHED_SCHEDULER": "GLB"}).reason
    assert "LCL without a valid XSCHED_POLICY" in effective_scheduler({"XSCHED_SCHEDULER": "LCL"}).reason


# -- scheduler and policy ---------------------------------------------------------------------------

def test_nothing_set_and_the_global_scheduler_are_clean() -> None:
    assert [f.severity for f in lint({})] == ["ok"]
    assert [f.severity for f in lint({"XSCHED_SCHEDULER": "GLB", "XSCHED_AUTO_XQUEUE": "ON"})] == ["ok"]


def test_gbl_policy_falls_through_to_the_app_managed_scheduler() -> None:
    [finding] = failures({"XSCHED_POLICY": "GBL"})
    assert "using app-managed scheduler" in finding.detail and "NOTHING is scheduled" in finding.detail
    assert finding.commands == ["unset XSCHED_POLICY", "export XSCHED_SCHEDULER=GLB"]
    assert finding.data["path"] == "XSCHED_POLICY" and finding.data["value"] == "GBL"


def test_gbl_policy_next_to_glb_is_ignored_not_fatal() -> None:
    findings = lint({"XSCHED_POLICY": "GBL", "XSCHED_SCHEDULER": "GLB"})
    assert [f.severity for f in findings] == ["warn"] and "ignored" in findings[0].title


def test_any_unknown_policy_is_judged_like_gbl() -> None:
    [finding] = failures({"XSCHED_POLICY": "hpf"})
    assert "using app-managed scheduler" in finding.detail


def test_lcl_without_a_policy_is_the_app_managed_scheduler() -> None:
    [finding] = failures({"XSCHED_SCHEDULER": "LCL"})
    assert "using app-managed scheduler" in finding.detail and "NOTHING is scheduled" in finding.detail
    assert "XSCHED_SCHEDULER=GLB" in finding.fix and "xserver" in finding.fix and "XSCHED_POLICY" in finding.fix
    assert finding.data["path"] == "XSCHED_SCHEDULER"


def test_lcl_with_gbl_policy_reports_both_variables() -> None:
    paths = sorted(f.data["path"] for f in failures({"XSCHED_SCHEDULER": "LCL", "XSCHED_POLICY": "GBL"}))
    assert paths == ["XSCHED_POLICY", "XSCHED_SCHEDULER"]


def test_a_valid_policy_is_a_local_scheduler_warning_not_a_failure() -> None:
    for env in ({"XSCHED_POLICY": "HPF"}, {"XSCHED_POLICY": "HPF", "XSCHED_SCHEDULER": "LCL"}):
        findings = lint(env)
        assert [f.severity for f in findings] == ["warn"], findings
        assert "local scheduler" in findings[0].title


def test_an_unknown_scheduler_value_fails() -> None:
    [finding] = failures({"XSCHED_SCHEDULER": "GLOBAL"})
    assert "app-managed" in finding.detail


# -- automatic XQueue knobs -------------------------------------------------------------------------

def test_level_out_of_range_warns_in_xsched_and_runs_unscheduled() -> None:
    [finding] = failures({"XSCHED_AUTO_XQUEUE_LEVEL": "7"})
    assert "fail to auto-create XQueue (level-7) for HwQueue ..., err: 2" in finding.detail
    assert "does not refuse" in finding.detail and "unscheduled" in finding.detail
    assert finding.commands == ["export XSCHED_AUTO_XQUEUE_LEVEL=1"]
    assert finding.data["path"] == "XSCHED_AUTO_XQUEUE_LEVEL"


@pytest.mark.parametrize(("name", "value"), [
    ("XSCHED_AUTO_XQUEUE_LEVEL", "0"),
    ("XSCHED_AUTO_XQUEUE_LEVEL", "4"),
    ("XSCHED_AUTO_XQUEUE_THRESHOLD", "0"),
    ("XSCHED_AUTO_XQUEUE_THRESHOLD", "x"),
    ("XSCHED_AUTO_XQUEUE_BATCH_SIZE", "0"),
    ("XSCHED_AUTO_XQUEUE_BATCH_SIZE", "17"),  # above the default threshold 16
    ("XSCHED_AUTO_XQUEUE_PRIORITY", "256"),
    ("XSCHED_AUTO_XQUEUE_PRIORITY", "-257"),
])
def test_out_of_range_knobs_fail_as_unscheduled(name: str, value: str) -> None:
    [finding] = failures({name: value})
    assert finding.data["path"] == name and "unscheduled" in finding.title and "does not refuse" in finding.detail


@pytest.mark.parametrize("env", [
    {"XSCHED_AUTO_XQUEUE_LEVEL": "1", "XSCHED_AUTO_XQUEUE_THRESHOLD": "64", "XSCHED_AUTO_XQUEUE_BATCH_SIZE": "32",
     "XSCHED_AUTO_XQUEUE_PRIORITY": "1"},
    {"XSCHED_AUTO_XQUEUE_THRESHOLD": "16", "XSCHED_AUTO_XQUEUE_BATCH_SIZE": "16"},
    {"XSCHED_AUTO_XQUEUE_BATCH_SIZE": "16"},
    {"XSCHED_AUTO_XQUEUE_PRIORITY": "255"},
    {"XSCHED_AUTO_XQUEUE_PRIORITY": "-256"},
    {"XSCHED_AUTO_XQUEUE_LEVEL": "3"},  # CUDA implements levels 2-3
])
def test_values_in_range_pass(env: dict[str, str]) -> None:
    assert failures(env) == []


def test_batch_above_the_set_threshold_fails() -> None:
    [finding] = failures({"XSCHED_AUTO_XQUEUE_THRESHOLD": "4", "XSCHED_AUTO_XQUEUE_BATCH_SIZE": "8"})
    assert "exceeds the threshold 4" in finding.title and finding.commands == ["export XSCHED_AUTO_XQUEUE_BATCH_SIZE=2"]


@pytest.mark.parametrize("level", ["2", "3"])
def test_hip_implements_level_1_only(level: str) -> None:
    [finding] = failures({"XSCHED_AUTO_XQUEUE_LEVEL": level}, "hip")
    assert "HIP implements level 1 only (levels 2-3: not yet implemented)" in finding.detail
    assert failures({"XSCHED_AUTO_XQUEUE_LEVEL": level}, "cuda") == []
    assert failures({"XSCHED_AUTO_XQUEUE_LEVEL": level}, None) == []


def test_hip_level_1_passes() -> None:
    assert failures({"XSCHED_AUTO_XQUEUE_LEVEL": "1"}, "hip") == []


def test_other_settings_keep_their_generic_lint() -> None:
    [finding] = failures({"XSCHED_AUTO_XQUEUE": "MAYBE"})
    assert finding.data["path"] == "XSCHED_AUTO_XQUEUE"
    [unknown] = lint({"XSCHED_TYPO": "1"})
    assert unknown.severity == "warn" and "unknown XSched setting" in unknown.title
    # The HAL's variables are the runtime-lib check's, not this one's.
    assert [f.severity for f in lint({"XSCHED_CUDA_LIB": "/nowhere"})] == ["ok"]
