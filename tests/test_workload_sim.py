"""The workload on this host with the simulated device: real python3 subprocesses, real timing.

The XSched path is exercised with real evidence: a shared object named libshimhip.so built with
gcc and preloaded, the XSCHED_* variables in the role's own environment, and a TCP listener as
the xserver. The device reads /proc/<pid>/maps and environ itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from xsched_ops.profiles import load_profile
from xsched_ops.workload import SOURCE_DIR, launcher_argv
from xsched_ops.workload.spec import build_spec

sys.path.insert(0, str(SOURCE_DIR.parent))
from xsched_ops_workload.arrivals import arrival_trace  # noqa: E402
from xsched_ops_workload.evidence import shim_paths_from_maps  # noqa: E402
from xsched_ops_workload.simdevice import decide_xsched  # noqa: E402

MAIN = str(SOURCE_DIR / "__main__.py")


def read_events(output_dir: Path, role: str) -> list[dict]:
    path = output_dir / f"events-{role}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def latencies_ms(events: list[dict]) -> list[float]:
    return sorted((e["done_s"] - e["intended_s"]) * 1000 for e in events
                  if e["event"] == "sample" and e["done_s"] is not None)


def p99(values: list[float]) -> float:
    return values[max(0, int(len(values) * 0.99 + 0.5) - 1)]


def run_workload(tmp_path: Path, spec: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    return subprocess.run([sys.executable, MAIN, "run", "--spec", str(spec_path)], capture_output=True,
                          text=True, timeout=timeout)


def sim_spec(tmp_path: Path, profile_name: str = "intensive", overrides=(), duration: float = 4.0, **kwargs) -> dict:
    profile = load_profile(profile_name, ["warmup_s=0.1", "warmup_iterations=1", "drain_s=2", *overrides],
                           duration_s=duration)
    return build_spec(profile, backend="sim", output_dir=str(tmp_path / "out"), run_id="test", **kwargs)


@pytest.fixture(scope="module")
def fake_shim(tmp_path_factory) -> str:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build a stand-in libshimhip.so")
    folder = tmp_path_factory.mktemp("shim")
    source = folder / "shim.c"
    source.write_text("int xsched_ops_test_shim_marker(void) { return 1; }\n")
    library = folder / "libshimhip.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return str(library)


@pytest.fixture()
def xserver_port():
    """A TCP listener standing in for xserver: accepts and replies a status line."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stopping = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stopping.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"xserver HPF ready\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stopping.set()
    thread.join()
    server.close()


def xsched_env(shim: str | None, priority: int, threshold: int, batch_size: int, **extra) -> dict[str, str]:
    env = {"XSCHED_SCHEDULER": "GLB", "XSCHED_AUTO_XQUEUE": "ON", "XSCHED_AUTO_XQUEUE_LEVEL": "1",
           "XSCHED_AUTO_XQUEUE_PRIORITY": str(priority), "XSCHED_AUTO_XQUEUE_THRESHOLD": str(threshold),
           "XSCHED_AUTO_XQUEUE_BATCH_SIZE": str(batch_size), **extra}
    if shim:
        env["LD_PRELOAD"] = shim
    return env


# -- pure pieces ----------------------------------------------------------------------------------

def test_arrival_traces_are_seeded_and_in_window():
    uniform = arrival_trace("uniform", 20, 0.1, 42, 10)
    assert uniform == arrival_trace("uniform", 20, 0.1, 42, 10) and len(uniform) == 200
    assert uniform != arrival_trace("uniform", 20, 0.1, 43, 10)
    assert all(abs(t - k / 20) <= 0.1 / 20 / 2 + 1e-9 for k, t in enumerate(uniform))
    poisson = arrival_trace("poisson", 20, 0, 7, 100)
    assert 1800 < len(poisson) < 2200 and poisson == sorted(poisson) and poisson[-1] < 100


def test_shim_detection_from_maps_text():
    maps = ("7f00-7f01 r-xp 00000000 08:01 1 /opt/x/lib/libshimhip.so\n"
            "7f01-7f02 r--p 00000000 08:01 2 /usr/lib/libc.so.6\n"
            "7f02-7f03 r-xp 00000000 08:01 3 /opt/x/lib/libshimcuda.so.1 (deleted)\n"
            "7f03-7f04 r-xp 00000000 08:01 4 /opt/x/lib/libshimhip.so\n")
    assert shim_paths_from_maps(maps) == ["/opt/x/lib/libshimhip.so", "/opt/x/lib/libshimcuda.so.1"]


def test_decision_needs_every_piece_of_evidence():
    env = xsched_env(None, 1, 16, 8)
    answering = lambda: (True, "ready")  # noqa: E731
    silent = lambda: (False, "ConnectionRefusedError")  # noqa: E731
    assert decide_xsched(["/x/libshimhip.so"], env, 1, answering)["xsched_active"]
    assert not decide_xsched([], env, 1, answering)["xsched_active"]
    assert not decide_xsched(["/x/libshimhip.so"], env, 1, silent)["xsched_active"]
    assert not decide_xsched(["/x/libshimhip.so"], {**env, "XSCHED_AUTO_XQUEUE": "OFF"}, 1, answering)["xsched_active"]
    assert not decide_xsched(["/x/libshimhip.so"], {**env, "XSCHED_POLICY": "GBL"}, 1, answering)["xsched_active"]
    local = decide_xsched(["/x/libshimhip.so"], {**env, "XSCHED_POLICY": "HPF"}, 77, silent)
    assert local["xsched_active"] and local["scope"] == "local:77"


# -- end to end -----------------------------------------------------------------------------------

def test_native_fifo_blocks_high_priority_behind_the_batch(tmp_path):
    spec = sim_spec(tmp_path)
    result = run_workload(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    high, low = read_events(out, "high"), read_events(out, "low")
    start = next(e for e in high if e["event"] == "start")
    assert start["simulated"] is True and start["backend"] == "sim" and start["sim"]["xsched_active"] is False
    assert start["xsched"]["shim_mapped"] is False
    assert p99(latencies_ms(high)) >= 400
    assert high[-1]["event"] == "end" and high[-1]["status"] == "ok"
    assert any(e["event"] == "iteration" and e["images"] == 1024 for e in low)
    # stdout carries the stream the host shows live
    streamed = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"start", "end", "progress"} <= {e["event"] for e in streamed}


def test_xsched_evidence_gives_priority(tmp_path, fake_shim, xserver_port):
    spec = sim_spec(tmp_path, overrides=[f"xsched.xserver_port={xserver_port}"], role_env={
        "high": xsched_env(fake_shim, 1, 16, 8), "low": xsched_env(fake_shim, 0, 4, 2)})
    result = run_workload(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    for role in ("high", "low"):
        start = next(e for e in read_events(out, role) if e["event"] == "start")
        assert start["xsched"]["shim_mapped"] and start["xsched"]["shim_paths"] == [fake_shim]
        assert start["sim"]["xsched_active"] and start["sim"]["scope"] == "global"
        assert start["sim"]["evidence_source"] == "proc"
    high = latencies_ms(read_events(out, "high"))
    assert len(high) >= 70  # 4 s at 20 req/s, all served
    assert p99(high) < 50
    assert any(e["event"] == "iteration" for e in read_events(out, "low"))


def test_env_without_shim_stays_native(tmp_path, xserver_port):
    spec = sim_spec(tmp_path, overrides=[f"xsched.xserver_port={xserver_port}"], duration=3, role_env={
        "high": xsched_env(None, 1, 16, 8), "low": xsched_env(None, 0, 4, 2)})
    assert run_workload(tmp_path, spec).returncode == 0
    start = next(e for e in read_events(tmp_path / "out", "high") if e["event"] == "start")
    assert start["sim"]["xsched_active"] is False and "no libshim" in start["sim"]["reason"]
    assert p99(latencies_ms(read_events(tmp_path / "out", "high"))) >= 400


def test_local_policy_gives_no_cross_process_priority(tmp_path, fake_shim, xserver_port):
    # The high queue launches 2 kernels at a time, so between its launches the low queue competes:
    # only a scheduler that sees both processes (GLB + xserver) holds the low queue back.
    # In-flight limits alone (local schedulers) already shorten the FIFO wait, but not as much.
    results = {}
    for label, extra in (("global", {}), ("local", {"XSCHED_POLICY": "HPF"})):
        run_dir = tmp_path / label
        run_dir.mkdir()
        spec = sim_spec(run_dir, duration=3, overrides=[f"xsched.xserver_port={xserver_port}"], role_env={
            "high": xsched_env(fake_shim, 1, 2, 1, **extra), "low": xsched_env(fake_shim, 0, 4, 2, **extra)})
        assert run_workload(run_dir, spec).returncode == 0
        start = next(e for e in read_events(run_dir / "out", "high") if e["event"] == "start")
        assert start["sim"]["xsched_active"]
        assert start["sim"]["scope"] == "global" if label == "global" else start["sim"]["scope"].startswith("local:")
        results[label] = p99(latencies_ms(read_events(run_dir / "out", "high")))
    assert results["global"] < 50
    assert results["local"] > 2 * results["global"] and results["local"] > 60


def test_glb_without_xserver_stays_native(tmp_path, fake_shim):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    spec = sim_spec(tmp_path, overrides=[f"xsched.xserver_port={free_port}"], duration=2, role_env={
        "high": xsched_env(fake_shim, 1, 16, 8), "low": xsched_env(fake_shim, 0, 4, 2)})
    assert run_workload(tmp_path, spec).returncode == 0
    start = next(e for e in read_events(tmp_path / "out", "high") if e["event"] == "start")
    assert start["xsched"]["shim_mapped"] and not start["sim"]["xsched_active"]
    assert "xserver does not answer" in start["sim"]["reason"]


@pytest.mark.parametrize("placement", ["streams", "shared-stream", "priority-streams"])
def test_in_process_placements(tmp_path, placement):
    spec = sim_spec(tmp_path, duration=3, placement=placement)
    assert run_workload(tmp_path, spec).returncode == 0
    high, low = read_events(tmp_path / "out", "high"), read_events(tmp_path / "out", "low")
    assert high[0]["pid"] == low[0]["pid"] and high[0]["placement"] == placement
    worst = p99(latencies_ms(high))
    if placement == "priority-streams":
        assert worst < 50  # native stream priority, honoured at kernel boundaries
    else:
        assert worst >= 400  # one hardware queue, FIFO


def test_in_process_placement_refuses_conflicting_env(tmp_path):
    spec = sim_spec(tmp_path, duration=1, placement="streams", role_env={
        "high": {"XSCHED_AUTO_XQUEUE_PRIORITY": "1"}, "low": {"XSCHED_AUTO_XQUEUE_PRIORITY": "0"}})
    result = run_workload(tmp_path, spec)
    assert result.returncode == 2 and "XSCHED_AUTO_XQUEUE_PRIORITY" in result.stderr


def test_killed_role_ends_the_run_and_keeps_its_samples(tmp_path):
    spec = sim_spec(tmp_path, profile_name="original", duration=30)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    launcher = subprocess.Popen([sys.executable, MAIN, "run", "--spec", str(spec_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "out"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(e["event"] == "sample" for e in read_events(out, "high")) < 20:
        time.sleep(0.1)
    low_pid = next(e["pid"] for e in read_events(out, "low") if e["event"] == "start")
    os.kill(low_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    launcher.wait(timeout=15)
    assert launcher.returncode != 0 and time.monotonic() - killed_at < 10
    high = read_events(out, "high")
    assert sum(e["event"] == "sample" for e in high) >= 20
    assert high[-1]["event"] == "end" and high[-1]["status"] == "error"
    launcher_events = [json.loads(line) for line in (out / "launcher.jsonl").read_text().splitlines()]
    assert any(e.get("what") == "role_exited" and e["role"] == "low" and e["returncode"] == -9 for e in launcher_events)
    for event in launcher_events:
        if event.get("what") == "role_started":
            with pytest.raises(ProcessLookupError):
                os.kill(event["pid"], 0)


def test_launcher_argv_points_into_the_versioned_folder():
    argv = launcher_argv("/tmp/s.json")
    assert argv[0] == "python3" and "/tmp/xsched-ops/workload-" in argv[1]
    assert argv[1].endswith("xsched_ops_workload/__main__.py") and argv[2:] == ["run", "--spec", "/tmp/s.json"]


@pytest.mark.slow
def test_open_loop_generator_keeps_the_rate_and_counts_queueing(tmp_path):
    # 20 req/s offered to a model that serves a request in 120 ms (8.3 req/s): the queue grows.
    spec = sim_spec(tmp_path, duration=30, overrides=["drain_s=1"], roles=("high",))
    spec["roles"][0]["model"] = "slow:120ms"
    spec["sim"]["models"] = {"slow:120ms": {"kernels": 4, "ms_per_image": 120.0, "fixed_ms": 0.0}}
    result = run_workload(tmp_path, spec, timeout=90)
    assert result.returncode == 0, result.stderr
    events = read_events(tmp_path / "out", "high")
    samples = [e for e in events if e["event"] == "sample"]
    assert len(samples) == 600  # every request of the trace is reported, served or not
    issued_in_window = [e for e in samples if e["issued_s"] is not None and e["issued_s"] < 30]
    achieved = len(issued_in_window) / 30
    assert abs(achieved - 20) / 20 <= 0.01
    issue_delays = sorted(e["issued_s"] - e["intended_s"] for e in issued_in_window)
    assert issue_delays[-1] < 0.02  # the generator never fell behind
    served = sorted((e for e in samples if e["done_s"] is not None), key=lambda e: e["seq"])
    assert 230 <= len(served) <= 270  # ~8.3 req/s for 31 s
    # Latency from the intended arrival includes the queue: it grows by ~(120 - 50) ms per request.
    last = served[-1]
    assert last["done_s"] - last["intended_s"] > 10
    for sample in served:
        service = sample["done_s"] - sample["started_s"]
        assert 0.115 < service < 0.2
        assert sample["done_s"] - sample["intended_s"] >= service
    end = events[-1]
    assert end["event"] == "end" and end["unfinished"] == 600 - len(served)
