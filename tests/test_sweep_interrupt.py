"""Ctrl-C during a cell's trial stops the whole sweep (exit 130), not just that cell's run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def test_ctrl_c_in_a_trial_stops_the_sweep_and_resume_goes_on(new_sandbox, tmp_path: Path) -> None:
    name = new_sandbox("ok")
    folder = tmp_path / "sweep"
    argv = [sys.executable, "-m", "xsched_ops", "sweep", "original", "--container", name, "--backend", "sim",
            "--grid", "low.batch=8,16,32", "--mode", "baseline", "--duration", "20", "--set", "warmup_s=1",
            "--set", "drain_s=1", "--sweep-dir", str(folder)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    runs = folder / "runs"
    # Wait until the first cell's trial records samples, then press Ctrl-C.
    while time.monotonic() < deadline and not any(runs.glob("*/trials/*")):
        time.sleep(0.2)
    time.sleep(4)
    pressed = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert time.monotonic() - pressed < 15
    assert "Traceback" not in err
    manifest = json.loads((folder / "sweep.json").read_text())
    statuses = [cell["status"] for cell in manifest["cells"]]
    assert statuses.count("valid") == 0 and len(list(runs.iterdir())) == 1, statuses  # no second cell started
    done = subprocess.run(argv[:-2] + ["--sweep-dir", str(folder), "--dry-run"], capture_output=True, text=True,
                          timeout=120)
    assert "3 to run" in done.stderr + done.stdout, done.stderr
