"""The experiment's pure parts: trial order, modes, environments per role, the progress feed."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from xsched_ops.environment.roles import (
    RUN_MARK_VARIABLE,
    as_configured_environment,
    native_environment,
    role_scheduling,
    spec_role_env,
)
from xsched_ops.errors import UsageError
from xsched_ops.experiment.modes import mode_plan, trial_order
from xsched_ops.experiment.progress import RunProgress
from xsched_ops.profiles import load_profile
from xsched_ops.xsched import platforms
from xsched_ops.xsched.install import XSchedInstall

PREFIX = "/data/dockercode/xsched-build/output"


@pytest.fixture
def install() -> XSchedInstall:
    return XSchedInstall(prefix=PREFIX, platform=platforms.get("hip"), version="1.2.0", found_by="test")


def test_repeats_interleave_the_modes() -> None:
    order = trial_order(["baseline", "xsched"], 3)
    assert [mode for _, _, mode in order] == ["baseline", "xsched"] * 3
    assert [index for index, _, _ in order] == [1, 2, 3, 4, 5, 6]
    assert [repeat for _, repeat, _ in order] == [0, 0, 1, 1, 2, 2]


def test_trial_order_refuses_nonsense() -> None:
    with pytest.raises(UsageError):
        trial_order(["baseline"], 0)
    with pytest.raises(UsageError):
        trial_order([], 1)


def test_mode_plans() -> None:
    profile = load_profile("intensive")
    assert mode_plan("standalone", profile).roles == ("high",)
    assert mode_plan("xsched", profile).uses_xsched
    assert not mode_plan("baseline", profile, "shared-stream").uses_xsched
    assert mode_plan("baseline", profile, "shared-stream").placement == "shared-stream"
    assert mode_plan("priority-streams", profile).placement == "priority-streams"
    with pytest.raises(UsageError, match="placement processes"):
        mode_plan("xsched", profile, "streams")
    with pytest.raises(UsageError, match="unknown mode"):
        mode_plan("fast", profile)


def test_native_environment_drops_every_trace_of_xsched(install: XSchedInstall) -> None:
    base = {
        "PATH": "/usr/bin",
        "LD_PRELOAD": f"{PREFIX}/lib/libshimhip.so /usr/lib/libkeep.so",
        "LD_LIBRARY_PATH": f"{PREFIX}/lib:/opt/rocm/lib",
        "XSCHED_SCHEDULER": "GLB",
        "XSCHED_AUTO_XQUEUE_PRIORITY": "1",
        "XSCHED_POLICY": "HPF",
        RUN_MARK_VARIABLE: "stale",
    }
    native = native_environment(base, install)
    assert native == {"PATH": "/usr/bin", "LD_PRELOAD": "/usr/lib/libkeep.so", "LD_LIBRARY_PATH": "/opt/rocm/lib"}


def test_as_configured_environment_keeps_the_users_setup(install: XSchedInstall) -> None:
    profile = load_profile("intensive")
    base = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": f"/opt/legacy/xsched/lib:{PREFIX}/lib"}
    env = as_configured_environment(base, install, "preload", role_scheduling(profile, "low"))
    # The stale folder stays first: run does not repair silently (doctor --fix does).
    assert env["LD_LIBRARY_PATH"] == base["LD_LIBRARY_PATH"]
    assert env["LD_PRELOAD"] == f"{PREFIX}/lib/libshimhip.so"
    assert env["XSCHED_SCHEDULER"] == "GLB"
    assert env["XSCHED_AUTO_XQUEUE_PRIORITY"] == "0"
    assert env["XSCHED_AUTO_XQUEUE_THRESHOLD"] == "4"
    libpath = as_configured_environment(base, install, "libpath", role_scheduling(profile, "high"))
    assert libpath["LD_LIBRARY_PATH"].split(":")[0] == f"{PREFIX}/lib"
    assert "LD_PRELOAD" not in libpath


def test_spec_role_env_is_the_difference_to_the_launcher() -> None:
    launcher = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/a", RUN_MARK_VARIABLE: "m", "HOME": "/root"}
    role = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/x:/a", "LD_PRELOAD": "/x/libshimhip.so", RUN_MARK_VARIABLE: "m"}
    added, cannot_remove = spec_role_env(launcher, role)
    assert added == {"LD_LIBRARY_PATH": "/x:/a", "LD_PRELOAD": "/x/libshimhip.so"}
    assert cannot_remove == ["HOME"]


def test_progress_feed_reads_the_workload_stream() -> None:
    console = Console(file=open("/dev/null", "w"), force_terminal=False)
    with RunProgress(console) as progress:
        feed = progress.trial("01 xsched", 20.0)
        feed.on_line("stdout", json.dumps({"event": "start", "role": "high", "pid": 7, "model": "m", "batch": 1,
                                           "device": "sim", "xsched": {"shim_mapped": True, "env": {}}}))
        feed.on_line("stdout", json.dumps({"event": "launcher", "what": "go", "t0_wall": 1.0}))
        feed.on_line("stdout", json.dumps({"event": "progress", "role": "high", "t_s": 5.0, "issued": 100,
                                           "completed": 98, "achieved_rate": 20.0, "p99_ms": 12.5}))
        feed.on_line("stdout", json.dumps({"event": "progress", "role": "low", "t_s": 5.0, "iterations": 10,
                                           "iter_per_s": 2.0}))
        feed.on_line("stderr", "ld.so: object cannot be preloaded")
        feed.on_line("stdout", "{not json")
    figures = feed.figures
    assert figures.phase == "measuring" and figures.t_s == 5.0
    assert figures.high_p99_ms == 12.5 and figures.high_rate == 20.0 and figures.high_completed == 98
    assert figures.low_iterations == 10
    assert "high" in figures.started_roles
    assert figures.other_lines == ["stderr: ld.so: object cannot be preloaded", "stdout: {not json"]
