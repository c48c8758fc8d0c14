"""Faults of the container during ``xsched-ops run`` (issue 15, part 5): ``docker stop``, ``docker rm -f``
and a SIGKILL of the workload launcher inside the target, mid-trial.

Each test runs the real CLI as a subprocess against a real sandbox container (simulated device),
waits until the high-priority role records samples, does the fault with the real docker CLI or a
real signal, and expects: exit 22 within 10 s, one ``error:`` line naming what happened, no
traceback, the run finalized as partial with what could be pulled, nothing left running.
(``docker kill`` is in test_experiment_sandbox.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sandbox_helpers import leftover_processes

from xsched_ops.errors import RunFailedError
from xsched_ops.results import load_run
from xsched_ops.workload import TARGET_ROOT

pytestmark = pytest.mark.docker

FAST = ["--set", "warmup_s=1", "--set", "drain_s=2"]
ENDS_WITHIN_S = 10.0


@pytest.fixture
def hf_sandbox(sandbox_image: str):
    """``hf_sandbox(scenario) -> name``: sandboxes named ``hF-...``, removed after the test (gone or not)."""
    from xsched_ops.errors import SandboxNotFoundError
    from xsched_ops.sandbox import create_sandbox, remove_sandbox

    created: list[str] = []

    def make(scenario: str = "ok") -> str:
        name = f"hF-{scenario}-{uuid.uuid4().hex[:8]}"
        create_sandbox(name, scenario)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            remove_sandbox(name)
        except SandboxNotFoundError:
            pass  # removed by the test itself


def marked_pids(container: str, needle: str) -> list[int]:
    """Pids of processes in the container whose command line contains every word of ``needle``."""
    script = ("import os, sys\n"
              "words = sys.argv[1].encode().split()\n"
              "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
              "    try: argv = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\\0')\n"
              "    except OSError: continue\n"
              "    if all(word in argv for word in words): print(pid)\n")
    out = subprocess.run(["docker", "exec", container, "python3", "-c", script, needle], capture_output=True,
                         text=True, timeout=60).stdout
    return [int(pid) for pid in out.split()]


def high_samples(container: str) -> int:
    script = f"cat {TARGET_ROOT}/runs/*/events-high.jsonl 2>/dev/null | grep -c '\"event\": *\"sample\"'"
    out = subprocess.run(["docker", "exec", container, "sh", "-c", script], capture_output=True, text=True,
                         timeout=60).stdout.strip()
    return int(out) if out.isdigit() else 0


def start_run(name: str, results: Path, logs: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "xsched_ops", "run", "intensive", "--container", name, "--backend", "sim",
            "--mode", "baseline", "--duration", "60", *FAST, "--results-dir", str(results), "--no-report", "--json",
            *extra]
    with (logs / "stdout.txt").open("w") as stdout, (logs / "stderr.txt").open("w") as stderr:
        return subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_for_samples(name: str, process: subprocess.Popen, logs: Path, samples: int = 20) -> None:
    deadline = time.monotonic() + 120
    while high_samples(name) < samples:
        if process.poll() is not None:
            pytest.fail(f"the run exited ({process.returncode}) before measuring:\n{read(logs / 'stderr.txt')}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {samples} samples within 120 s:\n{read(logs / 'stderr.txt')}")
        time.sleep(0.5)


def wait_exit(process: subprocess.Popen, since: float) -> float:
    try:
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return time.monotonic() - since


def read(path: Path) -> str:
    return path.read_text(errors="replace")


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def container_state(name: str) -> str:
    out = subprocess.run(["docker", "inspect", "--format", "{{.State.Status}}", name], capture_output=True,
                         text=True, timeout=60)
    return out.stdout.strip() if out.returncode == 0 else "gone"


def test_docker_stop_mid_run_ends_the_run_and_keeps_the_samples(hf_sandbox, tmp_path: Path) -> None:
    name = hf_sandbox("ok")
    results = tmp_path / "results"
    process = start_run(name, results, tmp_path)
    wait_for_samples(name, process, tmp_path)
    # `docker stop` waits for the container to exit (SIGTERM to its init, SIGKILL after its grace);
    # the run is timed from the moment the container is stopped.
    subprocess.run(["docker", "stop", name], check=True, capture_output=True, timeout=60)
    stopped = time.monotonic()
    elapsed = wait_exit(process, stopped)
    stderr = read(tmp_path / "stderr.txt")

    assert process.returncode == RunFailedError.exit_code, stderr
    assert elapsed < ENDS_WITHIN_S, f"exited {elapsed:.1f} s after the container stopped"
    error = one_error_line(stderr)
    assert f"the target {name!r} stopped during the trial" in error, error
    document = json.loads(read(tmp_path / "stdout.txt"))
    (trial,) = document["trials"]
    assert trial["status"] == "partial" and not trial["valid"], trial
    result = load_run(document["run_dir"])
    assert result.status == "partial"
    baseline = result.trials_of("baseline")[0]
    # What was recorded before the stop was pulled from the stopped container's files.
    assert baseline.high is not None and baseline.high.latency_ms.count >= 10, baseline.high
    assert container_state(name) == "exited"
    # Nothing of the run survives: started again, the container runs none of its processes.
    subprocess.run(["docker", "start", name], check=True, capture_output=True, timeout=60)
    assert leftover_processes(name) == []


def test_docker_rm_f_mid_run_ends_the_run_and_says_the_files_are_gone(hf_sandbox, tmp_path: Path) -> None:
    name = hf_sandbox("ok")
    results = tmp_path / "results"
    process = start_run(name, results, tmp_path)
    wait_for_samples(name, process, tmp_path)
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True, timeout=60)
    removed = time.monotonic()
    elapsed = wait_exit(process, removed)
    stderr = read(tmp_path / "stderr.txt")

    assert process.returncode == RunFailedError.exit_code, stderr
    assert elapsed < ENDS_WITHIN_S, f"exited {elapsed:.1f} s after the container was removed"
    error = one_error_line(stderr)
    assert name in error and "removed" in error, error
    document = json.loads(read(tmp_path / "stdout.txt"))
    (trial,) = document["trials"]
    assert trial["status"] in ("partial", "failed") and not trial["valid"], trial
    result = load_run(document["run_dir"])
    assert result.status != "complete"
    meta = result.trials_of("baseline")[0].meta
    assert meta is not None and meta.reason is not None
    # The reason recorded says why nothing could be pulled: the container, and its files, are gone.
    assert "removed" in meta.reason, meta.reason
    assert container_state(name) == "gone"


def test_sigkill_of_the_launcher_ends_the_run_and_leaves_nothing(hf_sandbox, tmp_path: Path) -> None:
    name = hf_sandbox("ok")
    results = tmp_path / "results"
    process = start_run(name, results, tmp_path)
    wait_for_samples(name, process, tmp_path)
    # The launcher: `python3 .../xsched_ops_workload/__main__.py run --spec .../spec.json`
    # (xsched_ops/experiment/orchestrator.py); the roles are its children.
    (launcher,) = marked_pids(name, "run --spec")
    subprocess.run(["docker", "exec", name, "kill", "-KILL", str(launcher)], check=True, timeout=60)
    killed = time.monotonic()
    elapsed = wait_exit(process, killed)
    stderr = read(tmp_path / "stderr.txt")

    assert process.returncode == RunFailedError.exit_code, stderr
    assert elapsed < ENDS_WITHIN_S, f"exited {elapsed:.1f} s after the kill"
    error = one_error_line(stderr)
    assert "did not complete" in error, error
    assert leftover_processes(name) == []  # the orphaned roles and the device were ended
    assert subprocess.run(["docker", "exec", name, "sh", "-c", f"ls {TARGET_ROOT}/runs"], capture_output=True,
                          text=True, timeout=60).stdout.split() == []
    document = json.loads(read(tmp_path / "stdout.txt"))
    result = load_run(document["run_dir"])
    assert result.status == "partial"
    baseline = result.trials_of("baseline")[0]
    assert baseline.meta is not None and baseline.meta.status == "partial", baseline.meta
    assert baseline.high is not None and baseline.high.latency_ms.count >= 10
