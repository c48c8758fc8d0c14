"""Ctrl-C at any moment (issue 15, part 5): one line, exit 130, no traceback, nothing left behind.

A real SIGINT, sent to the CLI's own process at exactly chosen moments (before the first, second
and third request of ``doctor`` to the container, while ``run`` checks its target before any trial,
while ``sandbox create`` copies the install in), and to a CLI subprocess at spread-out times from
its start-up on. Ctrl-C during a run's trials (exit 22, the samples kept) is in
test_run_interrupt.py, and during imports in test_startup.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sandbox_helpers import leftover_processes
from test_faults_container import hf_sandbox  # noqa: F401 - the fixture

from xsched_ops.cli import INTERRUPTED_EXIT_CODE, invoke
from xsched_ops.target.container import ContainerTarget
from xsched_ops.target.fs import ProcessRootFS

pytestmark = pytest.mark.docker


def sigint_before_call(monkeypatch: pytest.MonkeyPatch, owner: type, method: str, call: int) -> list[int]:
    """A real SIGINT to this process just before the ``call``-th call of ``owner.method``."""
    original = getattr(owner, method)
    calls: list[int] = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, method, wrapper)
    return calls


def assert_interrupted(code: int, err: str) -> None:
    """Exit 130 and one line, ``interrupted``, after whatever progress was said (no ``error:``, no traceback)."""
    assert code == INTERRUPTED_EXIT_CODE, (code, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1] == "interrupted", err
    assert lines.count("interrupted") == 1 and not any(line.startswith("error:") for line in lines), err


# The doctor's requests: its two execs (the probe, the ground truth's real loads) and its reads of
# the container's files through /proc/PID/root.
@pytest.mark.parametrize(("method", "call"), [("exec", 1), ("exec", 2), ("open", 1), ("open", 20)])
def test_ctrl_c_during_doctor_is_one_line_and_130(hf_sandbox, monkeypatch, capsys, method: str,  # noqa: F811
                                                  call: int) -> None:
    name = hf_sandbox("ok")
    owner = ContainerTarget if method == "exec" else ProcessRootFS
    calls = sigint_before_call(monkeypatch, owner, method, call)
    capsys.readouterr()
    code = invoke(["doctor", "--container", name, "--backend", "sim"])
    out, err = capsys.readouterr()
    assert len(calls) >= call
    assert_interrupted(code, err)
    assert "checks passed" not in out  # no verdict printed after the interrupt
    assert leftover_processes(name) == []


def test_ctrl_c_while_run_checks_its_target_is_one_line_and_130(hf_sandbox, monkeypatch, capsys,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    name = hf_sandbox("ok")
    calls = sigint_before_call(monkeypatch, ContainerTarget, "exec", 1)
    capsys.readouterr()
    code = invoke(["run", "intensive", "--container", name, "--backend", "sim", "--duration", "5",
                   "--results-dir", str(tmp_path), "--no-report"])
    _, err = capsys.readouterr()
    assert calls
    assert_interrupted(code, err)
    assert not list(tmp_path.glob("*/trials/*"))  # no trial was started
    assert leftover_processes(name) == []


def test_ctrl_c_during_sandbox_create_leaves_no_container(sandbox_image: str, monkeypatch, capsys) -> None:
    name = f"hF-create-{uuid.uuid4().hex[:8]}"
    calls = sigint_before_call(monkeypatch, ContainerTarget, "copy_in", 1)
    capsys.readouterr()
    try:
        code = invoke(["sandbox", "create", name, "--scenario", "ok"])
        _, err = capsys.readouterr()
    finally:
        leftover = subprocess.run(["docker", "ps", "-aq", "--filter", f"name=^{name}$"], capture_output=True,
                                  text=True, timeout=60).stdout.split()
        if leftover:
            subprocess.run(["docker", "rm", "-f", *leftover], capture_output=True, timeout=60)
    assert calls
    assert_interrupted(code, err)
    assert leftover == [], "the half-made sandbox was left behind"


def test_ctrl_c_at_spread_out_moments_of_a_doctor_subprocess(hf_sandbox) -> None:  # noqa: F811
    """From start-up (imports, connecting) to the checks: each ends in one line, 130 (or 0: done).

    Not before 0.25 s: a SIGINT while the interpreter itself starts (its ``site`` import, before any
    line of xsched-ops runs) is CPython's "Fatal Python error: init_import_site", out of reach.
    """
    name = hf_sandbox("ok")
    argv = [sys.executable, "-m", "xsched_ops", "doctor", "--container", name, "--backend", "sim"]
    codes = []
    for delay_s in (0.25, 0.5, 0.8, 1.3, 1.8, 2.5):
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        time.sleep(delay_s)
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        codes.append(process.returncode)
        if process.returncode == 0:  # the doctor had finished
            continue
        if process.returncode == -signal.SIGINT:
            # Ended by the signal itself (the interpreter's default action, as any program), with
            # at most the one line said: a shell reports that as 130.
            assert err in ("", "interrupted\n"), err
            continue
        assert_interrupted(process.returncode, err)
    assert sum(code in (INTERRUPTED_EXIT_CODE, -signal.SIGINT) for code in codes) >= 3, codes
    assert leftover_processes(name) == []
