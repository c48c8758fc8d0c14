"""Ctrl-C during ``xsched-ops run`` in a sandbox container: nothing lost, nothing left behind.

The main test runs the command as a real subprocess in its own session and interrupts it as a
terminal does: SIGINT to the whole foreground process group, while the xsched trial is measuring
(the xserver running, the high-priority role recording samples). Until then the run is left
alone, so the baseline trial completes. Expected: exit code 22 with one ``error:`` line and no
traceback, the run finalized as partial with the samples kept, and nothing of the run left in the
container (processes, the trial's folder, IPC state).

The second one hits the short moment after a trial's measurement, while it is cleaned up and
recorded, in process and deterministically: the trial is still recorded complete, then the run stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_helpers import leftover_processes

from xsched_ops.cli import invoke
from xsched_ops.errors import RunFailedError
from xsched_ops.experiment import orchestrator
from xsched_ops.results import load_run
from xsched_ops.sandbox.scenarios import STALE_IPC_FILE
from xsched_ops.workload import TARGET_ROOT
from xsched_ops.xsched import platforms

pytestmark = pytest.mark.docker

# Samples of the xsched trial's high-priority role recorded in the container before the interrupt.
SAMPLES_BEFORE_INTERRUPT = 30


def in_container(container: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True, timeout=60)


def high_samples_in_container(container: str) -> int:
    """Samples of the high role in the running trial's folder in the container (0 when none yet)."""
    script = f"cat {TARGET_ROOT}/runs/*/events-high.jsonl 2>/dev/null | grep -c '\"event\": *\"sample\"'"
    out = in_container(container, "sh", "-c", script).stdout.strip()
    return int(out) if out.isdigit() else 0


def sysv_segment_exists(container: str, key: str) -> bool:
    script = ("import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
              f"sys.exit(0 if libc.shmget({key}, 0, 0) >= 0 else 1)")
    return in_container(container, "python3", "-c", script).returncode == 0


def plant_xserver_ipc_state(container: str, key: str) -> None:
    """What a real xserver holds while it runs (the stand-in has none): the shm file and the SysV segment."""
    assert in_container(container, "sh", "-c", f"printf 'xserver state\\n' > {STALE_IPC_FILE}").returncode == 0
    script = ("import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
              f"sys.exit(0 if libc.shmget({key}, 4096, 0o1600) >= 0 else 1)")
    assert in_container(container, "python3", "-c", script).returncode == 0
    assert sysv_segment_exists(container, key)


def wait_for(what: str, condition, process: subprocess.Popen, timeout_s: float, logs: tuple[Path, Path]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run exited (code {process.returncode}) before {what}:\n"
                        f"{logs[1].read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s:g} s:\n{logs[1].read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


@pytest.mark.slow
def test_ctrl_c_in_the_xsched_trial_keeps_the_samples_and_leaves_nothing(new_sandbox, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    key = platforms.common().ipc_sysv_key
    results = tmp_path / "results"
    stdout_path, stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "xsched_ops", "run", "intensive", "--container", name, "--backend", "sim",
               "--mode", "baseline", "--mode", "xsched", "--duration", "30", "--set", "warmup_s=2",
               "--set", "drain_s=3", "--results-dir", str(results), "--no-report"]
    environment = {key: value for key, value in os.environ.items() if key != "XSCHED_OPS_DEBUG"}
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        # A session of its own: the process group a terminal's Ctrl-C would signal as a whole.
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                   env=environment, start_new_session=True)
    try:
        # The baseline trial runs to its end (~40 s); then the xsched trial starts, its xserver comes up
        # and its roles measure. Interrupt once the high role has recorded samples in that trial.
        wait_for("xsched trial", lambda: any(results.glob("*/trials/*-xsched")), process, 120,
                 (stdout_path, stderr_path))
        wait_for("xserver in the container", lambda: any("xserver" in line for line in leftover_processes(name)),
                 process, 60, (stdout_path, stderr_path))
        wait_for(f"{SAMPLES_BEFORE_INTERRUPT} samples of the xsched trial",
                 lambda: high_samples_in_container(name) >= SAMPLES_BEFORE_INTERRUPT, process, 60,
                 (stdout_path, stderr_path))
        plant_xserver_ipc_state(name, key)
        assert any("xserver" in line for line in leftover_processes(name))  # still mid-trial
        os.killpg(process.pid, signal.SIGINT)
        interrupted_at = time.monotonic()
        process.wait(timeout=60)
        elapsed = time.monotonic() - interrupted_at
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    stderr_text = stderr_path.read_text(errors="replace")

    assert process.returncode == RunFailedError.exit_code, stderr_text
    assert "Traceback" not in stderr_text, stderr_text
    errors = [line for line in stderr_text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr_text
    assert "interrupted" in errors[0], errors[0]
    assert elapsed < 30, f"exited {elapsed:.1f} s after Ctrl-C"

    # Nothing of the run left in the container: processes, the trial's folder, IPC state.
    assert leftover_processes(name) == []
    assert in_container(name, "sh", "-c", f"ls {TARGET_ROOT}/runs").stdout.split() == []
    assert "__IPC_SHM__" not in in_container(name, "ls", "/dev/shm").stdout
    assert not sysv_segment_exists(name, key)

    # Nothing lost: the run is finalized, partial, the baseline complete and the xsched samples kept.
    (run_dir,) = [path for path in results.iterdir() if path.is_dir()]
    assert str(run_dir) in " ".join(stderr_text.split()), stderr_text  # the error names where the results are
    result = load_run(run_dir)
    assert result.status == "partial"
    by_mode = {trial.mode: trial for trial in result.trials}
    assert set(by_mode) == {"baseline", "xsched"}
    baseline, xsched = by_mode["baseline"], by_mode["xsched"]
    assert baseline.meta is not None and baseline.meta.status == "complete"
    assert xsched.meta is not None and xsched.meta.status == "partial"
    assert xsched.meta.reason is not None and "interrupted" in xsched.meta.reason
    assert xsched.high is not None and xsched.high.completed_in_window >= 10  # ~30 were recorded before
    assert (run_dir / "trials" / xsched.trial_id / "xserver.log").is_file()


@pytest.mark.parametrize("moment", ["cleanup", "pull"])
def test_ctrl_c_while_a_trial_is_cleaned_up_and_recorded_waits_for_it(new_sandbox, tmp_path: Path, capsys,
                                                                      monkeypatch, moment: str) -> None:
    name = new_sandbox("ok")
    key = platforms.common().ipc_sysv_key
    sent: list[str] = []

    def ctrl_c_then(original):
        def wrapper(*args, **kwargs):
            if not sent:
                if moment == "cleanup":
                    plant_xserver_ipc_state(name, key)  # what a real xserver would leave to clean up
                sent.append(moment)
                os.kill(os.getpid(), signal.SIGINT)
            return original(*args, **kwargs)
        return wrapper

    if moment == "cleanup":
        monkeypatch.setattr(orchestrator.Experiment, "_cleanup", ctrl_c_then(orchestrator.Experiment._cleanup))
    else:
        monkeypatch.setattr(orchestrator, "pull_trial_files", ctrl_c_then(orchestrator.pull_trial_files))
    capsys.readouterr()
    code = invoke(["run", "intensive", "--container", name, "--mode", "xsched", "--mode", "baseline",
                   "--duration", "3", "--set", "warmup_s=1", "--set", "drain_s=1", "--results-dir",
                   str(tmp_path), "--no-report"])
    stderr_text = capsys.readouterr().err
    assert sent == [moment]
    assert code == RunFailedError.exit_code, stderr_text
    errors = [line for line in stderr_text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "interrupted" in errors[0], stderr_text

    assert leftover_processes(name) == []
    assert in_container(name, "sh", "-c", f"ls {TARGET_ROOT}/runs").stdout.split() == []
    assert "__IPC_SHM__" not in in_container(name, "ls", "/dev/shm").stdout
    assert not sysv_segment_exists(name, key)

    # The measurement had ended: the trial is complete with all its files; the next one never started.
    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    result = load_run(run_dir)
    (trial,) = result.trials
    assert trial.mode == "xsched"
    assert trial.meta is not None and trial.meta.status == "complete", trial.meta
    assert trial.valid, [finding.message for finding in trial.errors()]
    assert trial.high is not None and trial.high.completed_in_window >= 1
