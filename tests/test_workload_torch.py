"""The torch backend end to end on the CPU, with a tiny model of the test's own (file + factory)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xsched_ops.profiles import load_profile
from xsched_ops.workload import SOURCE_DIR
from xsched_ops.workload.spec import build_spec

pytest.importorskip("torch")

TINY_MODEL = '''
import torch

INPUT_SHAPE = (3, 16, 16)


def build():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 14 * 14, 10))
'''


def _run(tmp_path: Path, spec: dict) -> subprocess.CompletedProcess:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    return subprocess.run([sys.executable, str(SOURCE_DIR / "__main__.py"), "run", "--spec", str(spec_path)],
                          capture_output=True, text=True, timeout=180)


def test_torch_backend_runs_on_cpu_with_a_user_model(tmp_path):
    model_file = tmp_path / "tiny_model.py"
    model_file.write_text(TINY_MODEL)
    model = f"file:{model_file}:build"
    profile = load_profile("original", [f"high.model={json.dumps(model)}", f"low.model={json.dumps(model)}",
                                        "low.batch=4", "warmup_s=0.2", "drain_s=1"], duration_s=3)
    spec = build_spec(profile, backend="torch", device="cpu", output_dir=str(tmp_path / "out"), run_id="cpu")
    result = _run(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    events = {role: [json.loads(line) for line in (tmp_path / "out" / f"events-{role}.jsonl").read_text().splitlines()]
              for role in ("high", "low")}
    start = events["high"][0]
    assert start["event"] == "start" and start["backend"] == "torch" and start["simulated"] is False
    assert start["device"] == "cpu" and start["torch"]["version"].startswith("2.")
    samples = [e for e in events["high"] if e["event"] == "sample" and e["done_s"] is not None]
    assert len(samples) >= 28  # 3 s at 10 req/s
    assert all(e["done_s"] >= e["started_s"] >= e["issued_s"] >= e["intended_s"] - 0.001 for e in samples)
    assert any(e["event"] == "iteration" and e["images"] == 4 for e in events["low"])
    assert events["high"][-1]["status"] == "ok" and events["low"][-1]["status"] == "ok"


def test_missing_torchvision_is_a_clear_error(tmp_path):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("torchvision is installed here")
    profile = load_profile("original", ["warmup_s=0"], duration_s=1)
    spec = build_spec(profile, backend="torch", device="cpu", output_dir=str(tmp_path / "out"), run_id="tv",
                      roles=("high",))
    result = _run(tmp_path, spec)
    assert result.returncode == 1
    end = json.loads((tmp_path / "out" / "events-high.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "error" and "needs torchvision" in end["error"]
