"""The doctor on every sandbox scenario: the expected findings, the fix, and agreement with the real loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from xsched_ops.cli import invoke
from xsched_ops.doctor.fixes import ENVIRONMENT_FIXABLE
from xsched_ops.doctor.ground_truth import libraries_for_route, real_load
from xsched_ops.sandbox import containers as sandbox_containers
from xsched_ops.sandbox import scenarios
from xsched_ops.target.container import ContainerTarget
from xsched_ops.xsched import platforms

pytestmark = pytest.mark.docker

SCENARIO_NAMES = [name for name, scenario in scenarios.SCENARIOS.items() if scenario.alias_of is None] + ["no-gpu"]


def _doctor_json(name: str, capfd: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    capfd.readouterr()
    code = invoke(["doctor", "--container", name, "--no-torch", "--json", *extra])
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.out)


def _matches(finding: dict, expected: scenarios.ExpectedFinding) -> bool:
    if finding["id"] != expected.check or finding["severity"] != expected.severity:
        return False
    data = finding["data"]
    for field in ("symbol", "version", "needed", "needed_by", "loaded_provider", "expected_provider", "path"):
        wanted = getattr(expected, field)
        if wanted is not None and data.get(field) != wanted:
            return False
    return True


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, sandbox_image: str):
    scenario = request.param
    name = f"xo-doc-{scenario}-{uuid.uuid4().hex[:6]}"
    sandbox_containers.create_sandbox(name, scenario)
    try:
        yield name, scenarios.get(scenario)
    finally:
        sandbox_containers.remove_sandbox(name)


@pytest.mark.parametrize("sandbox", SCENARIO_NAMES, indirect=True)
def test_doctor_finds_what_the_scenario_breaks_and_fix_makes_it_clean(sandbox, capfd) -> None:
    name, scenario = sandbox
    code, document = _doctor_json(name, capfd)
    assert document["version"] == 1
    findings = document["findings"]
    failing = [f for f in findings if f["severity"] in ("fail", "crash")]
    assert code == 1  # every sandbox lacks a GPU
    for expected in scenario.expected_findings():
        assert any(_matches(f, expected) for f in findings), (expected, failing)
    # The model never disagrees with the real loader.
    assert not [f for f in findings if f["id"] == "ground-truth" and f["severity"] != "ok"], failing
    # One finding per cause: never one shim-loads failure per symbol.
    assert len([f for f in failing if f["id"] == "shim-loads"]) <= 1, failing
    if not scenario.expected:
        assert {f["id"] for f in failing} == {"gpu"}, failing
        # Judged for the simulated backend, the missing GPU is a warning: the exit code says ready.
        code, judged = _doctor_json(name, capfd, "--backend", "sim")
        assert code == 0, judged["summary"]
        gpu = [f for f in judged["findings"] if f["id"] == "gpu"]
        assert gpu and all(f["severity"] == "warn" and f["data"]["severity_for_gpu_backends"] == "fail" for f in gpu)
    if not scenario.fixable:
        return

    code, fixed = _doctor_json(name, capfd, "--fix", "--backend", "sim")
    # The fix worked and, for the simulated backend, nothing else fails.
    assert code == 0, [f for f in fixed["findings"] if f["severity"] in ("fail", "crash")]
    assert fixed["summary"]["exit_code"] == 0 and fixed["backend"] == "sim"
    code, after = _doctor_json(name, capfd)
    assert code == 1  # judged for a GPU backend, the missing GPU still fails
    remaining = {f["id"] for f in after["findings"] if f["severity"] in ("fail", "crash")}
    assert remaining == {"gpu"}, [f for f in after["findings"] if f["severity"] == "fail"]
    if {expected.check for expected in scenario.expected} & ENVIRONMENT_FIXABLE:
        assert after["environment_source"] == "stored by doctor --fix"

    # A real python3 started with `xsched-ops env`'s output loads with the shim mapped (with the
    # libpath route it loads the runtime's soname itself, as a CUDA program does).
    platform = platforms.get(scenario.platform)
    capfd.readouterr()
    assert invoke(["env", "--container", name, "--format", "json", "--full"]) == 0
    environment = json.loads(capfd.readouterr().out)["env"]
    with ContainerTarget.open(name) as target:
        loaded = real_load(target, environment,
                           load_libraries=libraries_for_route(platform, platform.default_route))
    assert loaded.started and loaded.has_mapped(platform.shim), loaded
    assert not loaded.has_mapped(platforms.get("cuda" if platform.name == "hip" else "hip").shim)


CUDA_SCENARIOS = [name for name, scenario in scenarios.SCENARIOS.items() if scenario.platform == "cuda"]


@pytest.mark.parametrize("sandbox", CUDA_SCENARIOS, indirect=True)
def test_env_platform_cuda_puts_the_lib_folder_first_and_the_real_driver_in_xsched_cuda_lib(sandbox, capfd) -> None:
    name, scenario = sandbox
    cuda = platforms.get("cuda")
    capfd.readouterr()
    assert invoke(["env", "--container", name, "--platform", "cuda", "--format", "json", "--full"]) == 0
    environment = json.loads(capfd.readouterr().out)["env"]
    assert environment["LD_LIBRARY_PATH"].split(":")[0] == scenarios.LIB
    assert "LD_PRELOAD" not in environment or cuda.shim not in environment["LD_PRELOAD"]
    driver = environment[cuda.runtime_lib_env]
    with ContainerTarget.open(name) as target:
        # The stand-in driver (the same file, whichever system folder names it), never the shim.
        assert target.fs().realpath(driver) == target.fs().realpath(scenarios.CUDA_DRIVER_STANDIN)
        assert target.fs().realpath(driver) != target.fs().realpath(scenarios.CUDA_SHIM)
        # Both reachable in one process: libcuda.so.1 resolves to the shim, the driver path to the stand-in.
        loaded = real_load(target, environment, load_libraries=[cuda.runtime_libs[0], driver])
    assert loaded.started and loaded.has_mapped(cuda.shim), loaded
    # /proc/self/maps names files by their resolved path, which the stand-in's is.
    assert scenarios.CUDA_DRIVER_STANDIN in loaded.mapped, loaded
    assert not loaded.loader_messages, loaded


@pytest.mark.parametrize("sandbox", ["seed"], indirect=True)
def test_allow_lib_changes_moves_the_stale_duplicate_aside(sandbox, capfd) -> None:
    name, _scenario = sandbox
    code, document = _doctor_json(name, capfd, "--fix", "--allow-lib-changes")
    moves = [a for a in document["fix"]["actions"] if a["kind"] == "move-aside"]
    assert moves and moves[0]["applied"] and moves[0]["restore_command"].startswith("mv ")
    with ContainerTarget.open(name) as target:
        assert not target.exists(f"{scenarios.LEGACY_LIB}/libhalhip.so")
        # Without the stored environment, the configured one now loads too.
        env = scenarios.get("seed").probe_env(target.environment())
        assert real_load(target, env).has_mapped(platforms.get("hip").shim)


@pytest.mark.parametrize("sandbox", ["seed"], indirect=True)
def test_seed_is_one_shim_loads_finding_and_the_report_cuts_nothing(sandbox, capfd, monkeypatch) -> None:
    name, _scenario = sandbox
    code, document = _doctor_json(name, capfd)
    shim_loads = [f for f in document["findings"] if f["id"] == "shim-loads" and f["severity"] == "fail"]
    assert len(shim_loads) == 1, shim_loads
    data = shim_loads[0]["data"]
    assert data["symbol"] == scenarios.TYPEINFO_SYMBOL
    listed = [entry["demangled"] for entry in data["symbols"]]
    assert listed[:2] == ["typeinfo for xsched::hip::HipCommand", "vtable for xsched::hip::HipCommand"]
    assert len(listed) >= 5 and all("xsched::hip::HipCommand" in entry for entry in listed), listed
    assert all(entry["symbol"].startswith("_Z") for entry in data["symbols"])
    summary = document["summary"]
    assert summary["findings"]["fail"] + summary["findings"]["warn"] == \
        len([f for f in document["findings"] if f["severity"] in ("fail", "warn")])

    for width in (40, 80, 200):
        monkeypatch.setenv("COLUMNS", str(width))
        capfd.readouterr()
        code = invoke(["doctor", "--container", name, "--no-torch"])
        captured = capfd.readouterr()
        assert code == 1
        assert captured.err == ""  # the report goes to stdout: `doctor > file` holds it
        out = captured.out
        lines = out.splitlines()
        assert "…" not in out
        lead = next(line for line in lines if line.startswith(("BROKEN", "OK")))  # after the title
        assert lead.startswith("BROKEN: the shim does not load")
        assert sum(line.startswith("FAIL shim-loads:") for line in lines) == 1
        assert "typeinfo for xsched::hip::HipCommand" in " ".join(out.split())
        assert scenarios.TYPEINFO_SYMBOL in out
        for command in shim_loads[0]["commands"]:
            assert any(line.strip() == command for line in lines), (width, command)
        for path in (f"{scenarios.LEGACY_LIB}/libhalhip.so", scenarios.SHIM, scenarios.HAL):
            assert path in out, (width, path)
        summary_line = " ".join(out[out.rindex("\n\n"):].split())  # the last paragraph
        assert summary_line.startswith(summary["line"]) and "3 findings shown" in summary_line, summary_line


@pytest.mark.parametrize("sandbox", ["seed"], indirect=True)
def test_doctor_report_redirected_to_a_file(sandbox, tmp_path) -> None:
    """As a user runs it: `xsched-ops doctor -c NAME > doctor.txt` (a pipe, no COLUMNS) holds the report."""
    name, _scenario = sandbox
    report = tmp_path / "doctor.txt"
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    with report.open("w") as out:
        completed = subprocess.run([sys.executable, "-m", "xsched_ops", "doctor", "-c", name, "--no-torch"],
                                   stdout=out, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    text = report.read_text()
    assert "…" not in text and "\x1b[" not in text
    assert "BROKEN: the shim does not load" in text
    assert any(line.strip().startswith(f"export LD_LIBRARY_PATH={scenarios.LIB}") for line in text.splitlines())
    assert any(line.strip() == f"export LD_PRELOAD={scenarios.SHIM}" for line in text.splitlines())
