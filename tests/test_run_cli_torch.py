"""The torch backend end to end on this host's CPU with --local and a small model of the test's own."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from xsched_ops.cli import invoke

torch = pytest.importorskip("torch")

MODEL = '''
import torch

INPUT_SHAPE = (32,)


def build():
    return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
'''


def test_torch_backend_runs_end_to_end_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "tiny_model.py"
    model.write_text(MODEL)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no stored environment of this host
    results = tmp_path / "results"
    code = invoke(["run", "intensive", "--local", "--backend", "torch", "--device", "cpu",
                   # The workload runs with the target's Python: on this host, this interpreter (it has torch).
                   "--python", sys.executable,
                   "--mode", "standalone", "--mode", "baseline", "--duration", "3",
                   "--set", "warmup_s=0.5", "--set", "drain_s=1", "--set", "low.batch=16",
                   "--set", f"high.model=file:{model}:build", "--set", f"low.model=file:{model}:build",
                   "--results-dir", str(results), "--no-report", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document["error"]
    assert document["valid"] and not document["simulated"]
    assert [trial["mode"] for trial in document["trials"]] == ["standalone", "baseline"]
    for trial in document["trials"]:
        assert trial["p99_ms"] is not None and trial["achieved_rate"] > 15
    assert document["trials"][1]["low_iter_per_s"] > 0
    trial_dir = Path(document["run_dir"]) / "trials" / "02-baseline"
    start = next(json.loads(line) for line in (trial_dir / "events-high.jsonl").read_text().splitlines()
                 if json.loads(line)["event"] == "start")
    assert start["backend"] == "torch" and start["device"] == "cpu"
    assert start["torch"]["version"] == torch.__version__
    assert start["model"].endswith("tiny_model.py:build")
