"""The experiment's pure parts: trial order, modes, environments per role, the progress feed."""

from __future__ import annotations

import json
import signal

import pytest
from rich.console import Console

from xsched_ops.environment.base import SOURCE_CONFIGURED, BaseEnvironment
from xsched_ops.environment.roles import (
    RUN_MARK_VARIABLE,
    as_configured_environment,
    native_environment,
    role_scheduling,
    spec_role_env,
)
from xsched_ops.errors import InvalidRunError, RunFailedError, UsageError
from xsched_ops.experiment.diagnosis import doctor_findings_hint, roles_killed_by_signal, trial_error
from xsched_ops.experiment.interrupt_hold import InterruptHold
from xsched_ops.experiment.modes import mode_plan, trial_order
from xsched_ops.experiment.progress import RunProgress
from xsched_ops.experiment.trial_environments import role_runtime, trial_environments
from xsched_ops.profiles import load_profile
from xsched_ops.results import TrialMeta
from xsched_ops.target.local import LocalTarget
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


# -- the run's jobs beside the orchestrator: failure diagnosis, Ctrl-C held, trial environments ------

def _failed_meta(status: str = "failed") -> TrialMeta:
    return TrialMeta(mode="xsched", repeat=0, placement="processes", backend="sim", simulated=True, duration_s=5.0,
                     status=status, reason="the workload launcher exited with code 1", expected_xsched=True)


def test_a_loader_failure_before_any_role_started_is_an_invalid_run(tmp_path) -> None:
    output = "stderr: python3: symbol lookup error: /x/libshimhip.so: undefined symbol: _ZTIN6xsched3hip10HipCommandE"
    error = trial_error("01 xsched", _failed_meta(), {"start": 0, "sample": 0, "iteration": 0}, output, tmp_path,
                        None, "sim", tmp_path)
    assert isinstance(error, InvalidRunError) and "the loader failed on the XSched environment" in error.one_line()
    # The same output once a role started is a trial that did not complete, nothing more.
    error = trial_error("01 xsched", _failed_meta("partial"), {"start": 1, "sample": 3, "iteration": 0}, output,
                        tmp_path, None, "sim", tmp_path)
    assert isinstance(error, RunFailedError) and "marked partial" in str(error.hint)


def test_roles_killed_by_a_signal_while_starting_name_the_doctor_s_failures(tmp_path) -> None:
    events = [{"event": "launcher", "what": "role_exited", "role": "high", "returncode": -11},
              {"event": "launcher", "what": "role_exited", "role": "low", "returncode": 0}]
    (tmp_path / "launcher.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert roles_killed_by_signal(tmp_path) == {"high": "SIGSEGV"}
    record = {"findings": [{"id": "runtime-lib", "severity": "fail", "title": "XSCHED_HIP_LIB points at the shim"},
                           {"id": "gpu", "severity": "fail", "title": "no GPU"}]}
    error = trial_error("01 xsched", _failed_meta(), {"start": 0, "sample": 0, "iteration": 0},
                        "stderr: Segmentation fault", tmp_path, record, "sim", tmp_path)
    assert isinstance(error, InvalidRunError)
    assert "high (SIGSEGV) died while starting" in error.one_line()
    # The simulated backend needs no GPU: only the runtime-lib failure is named.
    assert "runtime-lib: XSCHED_HIP_LIB points at the shim" in str(error.hint) and "no GPU" not in str(error.hint)
    assert "gpu: no GPU" in doctor_findings_hint(record, "torch")


def test_ctrl_c_is_held_until_the_hold_stops_and_a_second_one_goes_through() -> None:
    hold = InterruptHold()
    hold.start()
    try:
        signal.raise_signal(signal.SIGINT)
        assert hold.received
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        assert hold.stop()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not hold.stop()


def test_trial_environments_keep_the_launcher_native_and_give_each_role_its_own(install: XSchedInstall) -> None:
    profile = load_profile("intensive")
    base = BaseEnvironment({"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/rocm/lib"}, SOURCE_CONFIGURED)
    native = trial_environments(base, install, LocalTarget(), profile, mode_plan("baseline", profile), "m1",
                                None, False)
    assert native.launcher == {**base.env, RUN_MARK_VARIABLE: "m1"}
    assert {role.method for role in native.roles.values()} == {"native"} and native.spec_env["high"] == {}
    xsched = trial_environments(base, install, LocalTarget(), profile, mode_plan("xsched", profile), "m1",
                                None, False, {"EXTRA": "1"})
    assert xsched.launcher["EXTRA"] == "1" and "LD_PRELOAD" not in xsched.launcher
    high = xsched.spec_env["high"]
    assert high["LD_PRELOAD"] == f"{PREFIX}/lib/libshimhip.so" and high["XSCHED_AUTO_XQUEUE_PRIORITY"] == "1"
    assert xsched.roles["low"].method == "as-configured" and xsched.roles["low"].env["EXTRA"] == "1"
    assert role_runtime(mode_plan("xsched", profile), install, "libpath")["library"] == "libamdhip64.so"
    assert role_runtime(mode_plan("baseline", profile), install, "preload") is None
