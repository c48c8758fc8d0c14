"""`make demo`'s script end to end: the seed sandbox, the doctor's diagnosis, fix-and-rerun, a report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPOSITORY = Path(__file__).resolve().parent.parent


def test_demo_script_ends_with_a_report(tmp_path: Path, sandbox_image: str) -> None:
    name = f"xo-demo-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, DEMO_CONTAINER=name, DEMO_DURATION="8", DEMO_RESULTS=str(tmp_path / "results"),
               XO=str(Path(sys.executable).parent / "xsched-ops"))
    try:
        completed = subprocess.run(["bash", str(REPOSITORY / "docker" / "demo.sh")], env=env, cwd=REPOSITORY,
                                   capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run([env["XO"], "sandbox", "rm", name], capture_output=True)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    # The doctor's diagnosis of the seed's failure is shown.
    assert "HipCommand" in output
    # fix-and-rerun ends with a verdict and a report with embedded plots.
    assert re.search(r"verdict: tier \w+", output), output[-2000:]
    reports = list((tmp_path / "results").glob("*/report.html"))
    assert reports, output[-2000:]
    html = reports[0].read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert "SIMULATED" in html
