"""The analysis on files written by the real workload (sim backend), when that workload runs here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_results_builders import write_run

from xsched_ops.results import TrialMeta, finalize_run, trial_dir_for, write_trial_meta

WORKLOAD_DIR = Path(__file__).resolve().parent.parent / "xsched_ops" / "workload"


@pytest.mark.slow
def test_native_fifo_from_the_sim_workload(tmp_path):
    if not (WORKLOAD_DIR / "xsched_ops_workload" / "cli.py").is_file():
        pytest.skip("the workload's command line is not there yet")
    output = tmp_path / "out"
    spec = {
        "format": 1, "run_id": "t", "backend": "sim", "placement": "processes", "duration_s": 3.0,
        "warmup_s": 0.2, "warmup_iterations": 1, "drain_s": 1.0, "barrier_timeout_s": 60,
        "output_dir": str(output), "arrival": {"process": "uniform", "rate": 20.0, "jitter": 0.1, "seed": 42},
        "sim": {"models": {"torchvision:resnet18": {"kernels": 6, "ms_per_image": 3.0},
                           "torchvision:resnet50": {"kernels": 50, "ms_per_image": 0.48828125}}},
        "roles": [{"name": "high", "kind": "open-loop", "model": "torchvision:resnet18", "batch": 1},
                  {"name": "low", "kind": "closed-loop", "model": "torchvision:resnet50", "batch": 1024}],
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    completed = subprocess.run([sys.executable, "-m", "xsched_ops_workload", "run", "--spec", str(spec_path)],
                               cwd=WORKLOAD_DIR, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]

    run_dir = write_run(tmp_path / "results", "real")
    trial_dir = trial_dir_for(run_dir, 0, "baseline")
    trial_dir.mkdir(parents=True)
    for path in output.glob("*.jsonl"):
        shutil.copy(path, trial_dir)
    write_trial_meta(trial_dir, TrialMeta(mode="baseline", repeat=0, placement="processes", backend="sim",
                                          simulated=True, duration_s=3.0, target_rate=20.0,
                                          role_env={"high": {}, "low": {}}, launcher_exit_code=0))
    trial = finalize_run(run_dir).trials[0]
    assert trial.valid, trial.findings
    assert trial.simulated and trial.roles["high"].shim_mapped is False
    assert trial.high.requests == trial.high.issued_in_window == 60
    # FIFO behind ~500 ms batches: the high role waits for a batch (P99 at least ~400 ms)
    assert trial.high.latency_ms.p99 >= 400.0
    assert 1.5 < trial.low.iter_per_s < 2.5
