"""The Docker engine restarted during ``doctor`` and during ``run`` (issue 15, part 5).

Never the main engine: each test works on a second dockerd of its own (``second_engine.py``), with
a sandbox container there reached through ``--docker-host unix:///...``, and restarts that engine
while the real CLI works (a subprocess). Its containers stop with it. Expected: the command ends
cleanly, with an exit code of the README's table and one ``error:`` line, no traceback; a run ends
within 10 s of the restart with exit 22 and keeps, marked partial, what the stopped container's
files hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from second_engine import SecondEngine, second_engine  # noqa: F401 - the fixture

from xsched_ops.errors import ContainerNotRunningError, EngineUnavailableError, RunFailedError
from xsched_ops.results import load_run
from xsched_ops.workload import TARGET_ROOT

pytestmark = pytest.mark.docker

# The doctor's codes for a target that could not be checked (README: "10 and up"), and 0/1 when the
# restart came after its last request.
TARGET_LOST_CODES = {EngineUnavailableError.exit_code, ContainerNotRunningError.exit_code, 11, 13, 17}


@pytest.fixture
def engine2_sandbox(second_engine: SecondEngine):  # noqa: F811
    from xsched_ops.sandbox import create_sandbox

    name = f"hF-engine2-{uuid.uuid4().hex[:8]}"
    create_sandbox(name, "ok", docker_host=second_engine.url)
    try:
        yield second_engine, name
    finally:
        if not second_engine.answers():
            second_engine.restart()
        second_engine.docker("rm", "-f", name, check=False)


def cli(engine: SecondEngine, *argv: str) -> list[str]:
    return [sys.executable, "-m", "xsched_ops", "--docker-host", engine.url, *argv]


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def ensure_running(engine: SecondEngine, name: str) -> None:
    if not engine.answers():
        engine.start()
    state = engine.docker("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
    if state != "running":
        engine.docker("start", name)


def restart_before_call(monkeypatch: pytest.MonkeyPatch, owner: type, method: str, call: int,
                        engine: SecondEngine) -> list[int]:
    """Restart ``engine`` just before the ``call``-th call of ``owner.method``: a moment chosen exactly."""
    original = getattr(owner, method)
    calls: list[int] = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            engine.restart()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, method, wrapper)
    return calls


# The doctor's requests: execs (the probe, the ground truth's real loads) and reads of the
# container's files from the host (/proc/PID/root).


@pytest.mark.parametrize(("method", "call"), [("exec", 1), ("exec", 2), ("open", 1), ("open", 20)])
def test_engine_restarted_during_doctor_ends_cleanly(engine2_sandbox, monkeypatch, capsys, method: str,
                                                     call: int) -> None:
    from xsched_ops.cli import invoke
    from xsched_ops.target.container import ContainerTarget
    from xsched_ops.target.fs import ProcessRootFS

    engine, name = engine2_sandbox
    ensure_running(engine, name)
    owner = ContainerTarget if method == "exec" else ProcessRootFS
    calls = restart_before_call(monkeypatch, owner, method, call, engine)
    capsys.readouterr()
    code = invoke(["--docker-host", engine.url, "doctor", "--container", name, "--backend", "sim"])
    out, err = capsys.readouterr()
    assert len(calls) >= call, f"the doctor made only {len(calls)} {method} call(s)"
    assert "Traceback" not in err, err
    # Never a verdict from files that vanished with the container (they are not "missing").
    assert "FAIL" not in out, out
    # The container stopped with the engine: no verdict on it can be given, and none is printed.
    assert code == ContainerNotRunningError.exit_code, (code, out, err)
    error = one_error_line(err)
    assert name in error and "not running" in error or "stopped" in error, error
    assert "FAIL" not in out and "crash" not in out, out


def test_doctor_against_a_stopped_engine_is_one_line_and_10(engine2_sandbox) -> None:
    engine, name = engine2_sandbox
    engine.stop()
    try:
        completed = subprocess.run(cli(engine, "doctor", "--container", name, "--backend", "sim"),
                                   capture_output=True, text=True, timeout=120)
    finally:
        engine.start()
    assert completed.returncode == EngineUnavailableError.exit_code, completed.stderr
    error = one_error_line(completed.stderr)
    assert engine.url in error, error


def run_until_samples_then(engine: SecondEngine, name: str, tmp_path: Path, fault) -> tuple[int, str, str, float]:
    """Start a run on the second engine, do ``fault()`` once it measures; (exit code, stdout, stderr, seconds to end)."""
    results = tmp_path / "results"
    argv = cli(engine, "run", "intensive", "--container", name, "--backend", "sim", "--mode", "baseline",
               "--duration", "60", "--set", "warmup_s=1", "--set", "drain_s=2", "--results-dir", str(results),
               "--no-report", "--json")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    output: dict[str, str] = {}
    reader = threading.Thread(target=lambda: output.update(zip(("out", "err"), process.communicate(timeout=300),
                                                                strict=True)), daemon=True)
    reader.start()
    script = f"cat {TARGET_ROOT}/runs/*/events-high.jsonl 2>/dev/null | grep -c '\"event\": *\"sample\"'"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert process.poll() is None, output
            assert time.monotonic() < deadline, "no samples within 120 s"
            count = engine.docker("exec", name, "sh", "-c", script, check=False).stdout.strip()
            if count.isdigit() and int(count) >= 20:
                break
            time.sleep(0.5)
        fault_from = time.monotonic()
        fault()
        reader.join(120)
        elapsed = time.monotonic() - fault_from
        assert not reader.is_alive(), "the run did not end"
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, output["out"], output["err"], elapsed


def test_engine_restarted_during_run_ends_it_with_22_and_keeps_the_samples(engine2_sandbox, tmp_path: Path) -> None:
    engine, name = engine2_sandbox
    ensure_running(engine, name)
    code, stdout, stderr, elapsed = run_until_samples_then(engine, name, tmp_path, engine.restart)

    assert code == RunFailedError.exit_code, stderr
    assert elapsed < 10, f"exited {elapsed:.1f} s after the engine restart began"
    error = one_error_line(stderr)
    assert name in error, error
    document = json.loads(stdout)
    result = load_run(document["run_dir"])
    assert result.status == "partial"
    baseline = result.trials_of("baseline")[0]
    assert baseline.meta is not None and baseline.meta.status == "partial", baseline.meta
    # The engine came back and the stopped container's files were read: the samples are kept.
    assert baseline.high is not None and baseline.high.latency_ms.count >= 10, baseline.meta.reason


def test_engine_stopped_during_run_ends_it_with_22_and_says_so(engine2_sandbox, tmp_path: Path) -> None:
    engine, name = engine2_sandbox
    ensure_running(engine, name)
    try:
        code, stdout, stderr, elapsed = run_until_samples_then(engine, name, tmp_path, engine.stop)
    finally:
        engine.start()

    assert code == RunFailedError.exit_code, stderr
    # The engine gets ENGINE_RETURN_S (5 s) to come back from a restart before the target counts as lost.
    assert elapsed < 20, f"exited {elapsed:.1f} s after the engine was stopped"
    error = one_error_line(stderr)
    assert f"the Docker engine at {engine.url} stopped answering" in error, error
    document = json.loads(stdout)
    result = load_run(document["run_dir"])
    assert result.status != "complete"
    meta = result.trials_of("baseline")[0].meta
    assert meta is not None and meta.status in ("partial", "failed") and "stopped answering" in (meta.reason or "")
