"""The experiment end to end in sandbox containers with the simulated device (issue 5's acceptance).

Each test creates its own sandbox (unique name) and removes it. Durations follow the acceptance
(``--duration 20``) with a shorter warm-up to keep the suite's time reasonable.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_helpers import leftover_processes

from xsched_ops.cli import invoke
from xsched_ops.errors import InvalidRunError, RunFailedError
from xsched_ops.results import load_run
from xsched_ops.sandbox import scenarios
from xsched_ops.xsched import platforms

pytestmark = pytest.mark.docker

FAST = ["--set", "warmup_s=2", "--set", "drain_s=3"]


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict]:
    capsys.readouterr()
    code = invoke(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_intensive_sim_baseline_collapses_and_xsched_holds(new_sandbox, capsys, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    code, document = run_json(capsys, ["run", "intensive", "--container", name, "--duration", "20", *FAST,
                                       "--results-dir", str(tmp_path), "--no-report", "--json"])
    assert code == 0, document["error"]
    assert document["valid"] and document["simulated"]
    by_mode = {trial["mode"]: trial for trial in document["trials"]}
    assert by_mode["baseline"]["p99_ms"] >= 400, by_mode["baseline"]
    assert by_mode["xsched"]["p99_ms"] < 50, by_mode["xsched"]
    assert by_mode["xsched"]["shim_mapped"] == {"high": True, "low": True}
    assert by_mode["baseline"]["shim_mapped"] == {"high": False, "low": False}
    comparison = document["comparison"]
    assert comparison["tier"] in ("excellent", "good", "acceptable")
    assert comparison["p99_improvement_pct"] > 90

    result = load_run(document["run_dir"])
    xsched_trial = result.trials_of("xsched")[0]
    assert all(evidence.sim_xsched_active for evidence in xsched_trial.roles.values())
    trial_dir = Path(document["run_dir"]) / "trials" / xsched_trial.trial_id
    for role in ("high", "low"):
        environment = json.loads((trial_dir / f"environment-{role}.json").read_text())
        assert environment["env"]["LD_PRELOAD"].endswith("libshimhip.so")
        # Route preload: hipInit as the process has it is the shim's, and its HAL reached Debian's
        # real HIP runtime, which finds no GPU.
        runtime = xsched_trial.roles[role].runtime
        assert runtime is not None and runtime.library is None, runtime
        assert Path(runtime.init_defined_in_real).name == "libshimhip.so", runtime
        assert any(Path(path).name.startswith("libamdhip64.so.5") for path in runtime.mapped_files), runtime
        assert runtime.init_result not in (None, 0), runtime
    xserver_log = (trial_dir / "xserver.log").read_text()
    assert "scheduler created with policy HPF" in xserver_log
    # The scheduler's own evidence: both roles connected, their XQueues at the profile's priorities.
    scheduler = xsched_trial.meta.scheduler
    assert scheduler is not None and scheduler.available and scheduler.xserver_end == "SIGINT (exit code 0)"
    assert xsched_trial.roles["high"].scheduler_connected and xsched_trial.roles["low"].scheduler_connected
    assert set(xsched_trial.roles["high"].scheduler_priorities) == {1}
    assert set(xsched_trial.roles["low"].scheduler_priorities) == {0}
    for role in ("high", "low"):
        assert f"client process {xsched_trial.roles[role].pid} connected" in xserver_log
    assert document["trials"][1]["scheduler"]["roles"]["high"]["connected"] is True
    # Nothing of the run is left in the container's IPC namespace.
    assert _ipc_leftovers(name) == ""
    run_meta = json.loads((Path(document["run_dir"]) / "run.json").read_text())
    assert run_meta["profile"]["duration_s"] == 20
    assert run_meta["doctor"]["summary"]["checks"] > 0
    assert run_meta["xsched"]["platform"] == "hip"
    assert leftover_processes(name) == []


def test_seed_run_is_refused_then_fix_and_rerun_gives_a_tier(new_sandbox, capsys, tmp_path: Path) -> None:
    name = new_sandbox("seed")
    code, document = run_json(capsys, ["run", "intensive", "--container", name, "--duration", "20", *FAST,
                                       "--results-dir", str(tmp_path), "--no-report", "--json"])
    assert code == InvalidRunError.exit_code, document["error"]
    assert not document["valid"]
    assert "symbol lookup error" in document["error"]["message"]
    result = load_run(document["run_dir"])
    assert result.mode_valid("baseline")
    xsched_trial = result.trials_of("xsched")[0]
    assert not xsched_trial.valid
    # No role ran with the shim: the preload killed them before they could record anything.
    assert not any(evidence.shim_mapped for evidence in xsched_trial.roles.values())
    assert {finding.code for finding in xsched_trial.errors()} >= {"role-missing"}
    first_run = document["run_id"]

    code, document = run_json(capsys, ["fix-and-rerun", "intensive", "--container", name, "--duration", "20",
                                       *FAST, "--results-dir", str(tmp_path), "--no-report", "--json",
                                       "--fail-under", "acceptable"])
    assert code == 0, document["error"]
    assert document["valid"]
    assert document["verification"]["started"]
    assert any(action["kind"] == "store-environment" and action["applied"]
               for action in document["doctor"]["actions"])
    # The valid baseline of the first run is reused: only xsched ran now.
    assert document["baseline_run"] == first_run
    assert [trial["mode"] for trial in document["trials"]] == ["xsched"]
    assert document["trials"][0]["shim_mapped"] == {"high": True, "low": True}
    # Verified with the profile's xserver running, which saw the verifying process; the trial
    # carries the scheduler's evidence for both roles.
    assert "the xserver saw the verifying python3" in document["verification"]["scheduler"]
    scheduler = document["trials"][0]["scheduler"]
    assert scheduler["xserver_end"] == "SIGINT (exit code 0)"
    assert scheduler["roles"]["high"]["connected"] and set(scheduler["roles"]["high"]["priorities"]) == {1}
    assert scheduler["roles"]["low"]["connected"] and set(scheduler["roles"]["low"]["priorities"]) == {0}
    assert _ipc_leftovers(name) == ""
    comparison = document["comparison"]
    assert comparison["baseline_run_id"] == first_run
    assert comparison["tier"] in ("excellent", "good", "acceptable")
    assert not document["below_fail_under"]
    assert leftover_processes(name) == []


def _ipc_leftovers(container: str) -> str:
    """SysV message queues and /dev/shm files in the container (empty when none)."""
    out = subprocess.run(["docker", "exec", container, "sh", "-c",
                          "tail -n +2 /proc/sysvipc/msg; ls /dev/shm"], capture_output=True, text=True)
    return out.stdout.strip()


def test_role_falling_through_to_app_managed_is_refused(new_sandbox, capsys, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    code, document = run_json(capsys, ["run", "intensive", "--container", name, "--duration", "5", *FAST,
                                       "--mode", "xsched", "--set", "xsched.scheduler=LCL",
                                       "--results-dir", str(tmp_path), "--no-report", "--json"])
    assert code == InvalidRunError.exit_code, document
    assert not document["valid"]
    errors = " ".join(document["trials"][0]["errors"])
    assert "the xserver never saw it connect: app-managed scheduler" in errors, errors
    assert "high (pid " in errors and "XSCHED_SCHEDULER=LCL" in errors, errors
    assert _ipc_leftovers(name) == ""


def test_xserver_killed_mid_trial_ends_it_and_keeps_the_samples(new_sandbox, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    argv = [sys.executable, "-m", "xsched_ops", "run", "intensive", "--container", name, "--duration", "60",
            *FAST, "--mode", "xsched", "--results-dir", str(tmp_path), "--no-report", "--json"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("*/trials/*/trial.json")) or not _pids_of_role(name, "high"):
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read() if process.poll() else ""
            time.sleep(0.5)
        time.sleep(4)  # samples are being recorded
        subprocess.run(["docker", "exec", name, "pkill", "-KILL", "-x", "xserver"], check=True)
        killed_wall = time.time()
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    document = json.loads(stdout)
    trial = document["trials"][0]
    assert trial["status"] == "partial" and not trial["valid"], trial
    assert any("xserver died" in error for error in trial["errors"]), trial["errors"]
    result = load_run(document["run_dir"])
    xsched_trial = result.trials_of("xsched")[0]
    assert xsched_trial.high is not None and xsched_trial.high.latency_ms.count > 0  # samples kept
    meta = xsched_trial.meta
    assert meta is not None and meta.scheduler is not None and meta.scheduler.xserver_died
    # Ended, cleaned up and recorded within 10 s of the kill (the trial asked for 60 s).
    assert meta.ended_wall is not None and meta.ended_wall - killed_wall < 10, meta.ended_wall - killed_wall
    assert leftover_processes(name) == []
    assert _ipc_leftovers(name) == ""


def test_run_refused_while_another_xserver_runs(new_sandbox, capsys, tmp_path: Path) -> None:
    name = new_sandbox("xserver-running")
    capsys.readouterr()
    code = invoke(["run", "intensive", "--container", name, "--duration", "5", *FAST,
                   "--results-dir", str(tmp_path), "--no-report"])
    err = capsys.readouterr().err
    assert code == RunFailedError.exit_code
    lines = [line for line in err.splitlines() if line.strip()]
    assert any("an xserver already runs in the target (pid" in line for line in lines), err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("*/trials"))  # refused before any trial


def _pids_of_role(container: str, role: str) -> list[int]:
    script = ("import os\n"
              "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
              "    try: argv = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\\0')\n"
              "    except OSError: continue\n"
              f"    if b'role' in argv and b'--role' in argv and b'{role}' in argv: print(pid)\n")
    out = subprocess.run(["docker", "exec", container, "python3", "-c", script], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def test_role_killed_mid_run_ends_everything_and_keeps_the_samples(new_sandbox, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    command = [sys.executable, "-m", "xsched_ops", "run", "intensive", "--container", name, "--mode", "xsched",
               "--duration", "30", "--set", "warmup_s=1", "--results-dir", str(tmp_path), "--no-report"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _pids_of_role(name, "low"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the low role never started"
            time.sleep(0.3)
        time.sleep(6)  # warm-up, then a few seconds of measurement
        pids = _pids_of_role(name, "low")
        assert pids
        subprocess.run(["docker", "exec", name, "kill", "-9", *map(str, pids)], check=True)
        killed_at = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - killed_at
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == RunFailedError.exit_code, stderr
    assert elapsed < 10, f"exited {elapsed:.1f} s after the kill"
    assert leftover_processes(name) == []
    ipc = subprocess.run(["docker", "exec", name, "sh", "-c", "ls /dev/shm"], capture_output=True, text=True).stdout
    assert "__IPC_SHM__" not in ipc

    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    result = load_run(run_dir)
    assert result.status == "partial"
    (trial,) = result.trials
    assert trial.meta is not None and trial.meta.status == "partial"
    assert trial.high is not None and trial.high.completed_in_window > 20
    assert "role-died" in {finding.code for finding in trial.errors()}


# -- CUDA (issue 8): the libpath route, where the shim enters only when the runtime is loaded --------

def test_cuda_ok_sim_run_maps_the_shim_through_the_runtime_name_in_both_roles(new_sandbox, capsys,
                                                                              tmp_path: Path) -> None:
    cuda = platforms.get("cuda")
    name = new_sandbox("cuda-ok")
    code, document = run_json(capsys, ["run", "intensive", "--container", name, "--duration", "10", *FAST,
                                       "--results-dir", str(tmp_path), "--no-report", "--json"])
    assert code == 0, document["error"]
    assert document["valid"] and document["simulated"]
    by_mode = {trial["mode"]: trial for trial in document["trials"]}
    assert by_mode["xsched"]["shim_mapped"] == {"high": True, "low": True}
    assert by_mode["baseline"]["shim_mapped"] == {"high": False, "low": False}
    # XSched holds the high-priority tail within the profile's SLA (100 ms) while the FIFO baseline
    # does not; 10 s of samples make this P99 close to the maximum, so the margin is the SLA's.
    assert by_mode["xsched"]["p99_ms"] < 100 < by_mode["baseline"]["p99_ms"]

    result = load_run(document["run_dir"])
    xsched_trial = result.trials_of("xsched")[0]
    trial_dir = Path(document["run_dir"]) / "trials" / xsched_trial.trial_id
    for role, evidence in xsched_trial.roles.items():
        assert evidence.sim_xsched_active, (role, evidence.sim_reason)
        # The role loaded libcuda.so.1 by name; the install's softlink gave it the shim ...
        runtime = evidence.runtime
        assert runtime is not None and runtime.library == cuda.application_soname
        assert Path(runtime.init_defined_in_real).name == cuda.shim
        # ... whose cuInit found the real driver (the stand-in) in the system folder and called it.
        assert runtime.mapped_files == [f"/usr/lib/x86_64-linux-gnu/{cuda.application_soname}"], runtime
        assert runtime.init_result == 100  # the stand-in's CUDA_ERROR_NO_DEVICE: the sandbox has no GPU
        environment = json.loads((trial_dir / f"environment-{role}.json").read_text())
        assert environment["env"]["LD_LIBRARY_PATH"].split(":")[0].endswith("/lib")
        assert cuda.shim not in environment["env"].get("LD_PRELOAD", "")
    spec = json.loads((trial_dir / "spec.json").read_text())
    assert all(role["runtime"] == {"library": cuda.application_soname, "init_symbol": cuda.init_symbol,
                                   "file_prefix": "libcuda.so"} for role in spec["roles"])
    baseline_spec = json.loads((Path(document["run_dir"]) / "trials" / result.trials_of("baseline")[0].trial_id
                                / "spec.json").read_text())
    assert all("runtime" not in role for role in baseline_spec["roles"])
    assert leftover_processes(name) == []


@pytest.mark.parametrize("scenario_name", ["softlink-recursion", "cuda-recursion"])
def test_hal_pointed_at_the_shim_run_is_refused_with_the_cause_then_fix_and_rerun_gives_a_tier(
        new_sandbox, capsys, tmp_path: Path, scenario_name: str) -> None:
    scenario = scenarios.get(scenario_name)
    platform = platforms.get(scenario.platform)
    name = new_sandbox(scenario_name)
    code, document = run_json(capsys, ["run", "intensive", "--container", name, "--duration", "10", *FAST,
                                       "--results-dir", str(tmp_path), "--no-report", "--json"])
    assert code == InvalidRunError.exit_code, document["error"]
    message = document["error"]["message"]
    # The roles died in the runtime's entry point, whose real runtime was the shim itself; the
    # doctor's finding is named, the missing GPU is not (the simulated backend needs none).
    assert "SIGSEGV" in message, message
    assert f"runtime-lib: {platform.runtime_lib_env}=" in message, message
    assert "gpu:" not in message
    result = load_run(document["run_dir"])
    assert result.mode_valid("baseline")
    assert not result.trials_of("xsched")[0].valid
    first_run = document["run_id"]

    code, document = run_json(capsys, ["fix-and-rerun", "intensive", "--container", name, "--duration", "10",
                                       *FAST, "--results-dir", str(tmp_path), "--no-report", "--json"])
    assert code == 0, document["error"]
    assert document["valid"] and document["baseline_run"] == first_run
    assert document["trials"][0]["shim_mapped"] == {"high": True, "low": True}
    assert document["comparison"]["tier"] in ("excellent", "good", "acceptable")
    rerun = load_run(document["run_dir"])
    for evidence in rerun.trials_of("xsched")[0].roles.values():
        assert evidence.xsched_env[platform.runtime_lib_env] != scenario.env[platform.runtime_lib_env]
        runtime = evidence.runtime
        # The entry point came from the shim, which now reached the real runtime (or its stand-in).
        assert runtime is not None and Path(runtime.init_defined_in_real).name == platform.shim, runtime
        assert runtime.mapped_files and runtime.init_result not in (None, 0), runtime
    assert leftover_processes(name) == []


def test_docker_kill_mid_run_ends_the_run_and_keeps_the_samples(new_sandbox, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    argv = [sys.executable, "-m", "xsched_ops", "run", "intensive", "--container", name, "--duration", "60",
            *FAST, "--mode", "baseline", "--results-dir", str(tmp_path), "--no-report", "--json"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _pids_of_role(name, "high"):
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read() if process.poll() else ""
            time.sleep(0.5)
        time.sleep(5)  # samples are being recorded
        subprocess.run(["docker", "kill", name], check=True, capture_output=True)
        killed = time.monotonic()
        stdout, stderr = process.communicate(timeout=120)
        ended = time.monotonic()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == RunFailedError.exit_code, stderr
    assert ended - killed < 10, ended - killed
    assert "Traceback" not in stderr
    document = json.loads(stdout)
    assert f"the target {name!r} stopped during the trial" in document["error"]["message"], document["error"]
    trial = document["trials"][0]
    assert trial["status"] == "partial" and not trial["valid"], trial
    result = load_run(document["run_dir"])
    baseline = result.trials_of("baseline")[0]
    assert baseline.high is not None and baseline.high.latency_ms.count > 0  # what was served before the kill


def _mps_daemons(container: str) -> list[str]:
    script = ("import os\n"
              "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
              "    try: argv0 = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\\0')[0]\n"
              "    except OSError: continue\n"
              "    if os.path.basename(argv0) == b'nvidia-cuda-mps-control': print(pid)\n")
    out = subprocess.run(["docker", "exec", container, "python3", "-c", script], capture_output=True, text=True)
    return out.stdout.split()


def test_mps_placement_starts_attaches_and_stops_the_daemon(new_sandbox, capsys, tmp_path: Path) -> None:
    name = new_sandbox("cuda-ok")  # the sandbox's nvidia-cuda-mps-control is the project's stand-in
    code, document = run_json(capsys, ["run", "intensive", "--container", name, "--duration", "5", *FAST,
                                       "--placement", "mps", "--mode", "baseline", "--mode", "xsched",
                                       "--results-dir", str(tmp_path), "--no-report", "--json"])
    assert code == 0, document["error"]
    result = load_run(document["run_dir"])
    for trial in result.trials:
        assert trial.meta is not None and trial.meta.placement == "mps"
        mps = trial.meta.mps
        assert mps is not None and mps.servers and mps.stopped_cleanly, mps
        for role, evidence in trial.roles.items():
            assert evidence.pid in mps.clients, (role, evidence.pid, mps)
        trial_dir = Path(document["run_dir"]) / "trials" / trial.trial_id
        environment = json.loads((trial_dir / "environment-high.json").read_text())["env"]
        assert environment["CUDA_MPS_PIPE_DIRECTORY"] == mps.pipe_directory
    assert _mps_daemons(name) == []
    assert leftover_processes(name) == []
    listing = subprocess.run(["docker", "exec", name, "sh", "-c", "ls /tmp/xsched-ops/runs"], capture_output=True,
                             text=True).stdout
    assert "mps" not in listing


def test_mps_placement_on_hip_is_refused_with_one_line(new_sandbox, capsys, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    capsys.readouterr()
    code = invoke(["run", "intensive", "--container", name, "--duration", "5", "--placement", "mps",
                   "--results-dir", str(tmp_path), "--no-report"])
    err = capsys.readouterr().err
    assert code == 2
    assert "placement mps needs the CUDA platform" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*/trials"))


def test_sweep_runs_each_cell_once_and_resumes(new_sandbox, capsys, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    argv = ["sweep", "intensive", "--container", name, "--grid", "low.batch=8,64", "--mode", "baseline",
            "--duration", "3", *FAST, "--sweep-dir", str(tmp_path / "sweep"), "--json"]
    code, document = run_json(capsys, argv)
    assert code == 0, document
    cells = {cell["cell_id"]: cell for cell in document["manifest"]["cells"]}
    assert set(cells) == {"low.batch=8", "low.batch=64"} and all(c["status"] == "valid" for c in cells.values())
    rows = {row["cell"]: row for row in document["summary"]}
    # Batch is the key variable: the FIFO baseline's tail grows with the background batch.
    assert rows["low.batch=64"]["p99_ms"] > rows["low.batch=8"]["p99_ms"]
    for cell in cells.values():
        assert (tmp_path / "sweep" / "runs" / cell["run_id"] / "run.json").is_file()

    capsys.readouterr()
    assert invoke(argv[:-1] + ["--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "2 already valid, 0 to run" in captured.err
    assert captured.out.count("skip (valid)") == 2


@pytest.mark.parametrize("interrupt", ["dead-role", "ctrl-c"])
def test_mps_daemon_is_stopped_after_a_dead_role_or_ctrl_c(new_sandbox, tmp_path: Path, interrupt: str) -> None:
    name = new_sandbox("cuda-ok")
    command = [sys.executable, "-m", "xsched_ops", "run", "intensive", "--container", name, "--mode", "baseline",
               "--placement", "mps", "--duration", "30", "--set", "warmup_s=1", "--results-dir", str(tmp_path),
               "--no-report"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _pids_of_role(name, "low"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the low role never started"
            time.sleep(0.3)
        time.sleep(3)
        assert _mps_daemons(name)  # the trial's daemon runs
        if interrupt == "dead-role":
            subprocess.run(["docker", "exec", name, "kill", "-9", *map(str, _pids_of_role(name, "low"))], check=True)
        else:
            process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == RunFailedError.exit_code, stderr
    assert "Traceback" not in stderr
    assert _mps_daemons(name) == []
    assert leftover_processes(name) == []
    listing = subprocess.run(["docker", "exec", name, "sh", "-c", "find /tmp/xsched-ops/runs -name mps"],
                             capture_output=True, text=True).stdout
    assert listing.strip() == ""
