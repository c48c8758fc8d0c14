"""The workload on this host with the simulated device: real python3 subprocesses, real timing.

The XSched path is exercised with real evidence: a shared object named libshimhip.so built with
gcc and preloaded, the XSCHED_* variables in the role's own environment, and an HTTP server in
the test standing in for the xserver (``GET /policy``, ``GET /xqueues``, as XSched 1.2's). The
device reads /proc/<pid>/maps and environ itself and asks that server which XQueues it has.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
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
from xsched_ops.xsched.settings import effective_scheduler

sys.path.insert(0, str(SOURCE_DIR.parent))
from xsched_ops_workload.arrivals import arrival_trace  # noqa: E402
from xsched_ops_workload.events import EventLog  # noqa: E402
from xsched_ops_workload.evidence import read_environ, read_maps, shim_paths_from_maps  # noqa: E402
from xsched_ops_workload.simclient import SimQueueClient  # noqa: E402
from xsched_ops_workload.simdevice import SimDevice  # noqa: E402
from xsched_ops_workload.xsched_decision import XServerUnavailable, decide_xsched, query_xserver  # noqa: E402

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


class FakeXServer:
    """XSched's xserver as the device sees it: HTTP, no greeting, ``/policy`` and ``/xqueues``.

    ``processes`` and ``xqueues`` are served as set by the test. With ``auto`` it also does what
    the shim and the xserver do together for a real client: every process on this host that maps
    a libshim*.so and gets the global scheduler (``effective_scheduler``) is listed as connected
    and, with XSCHED_AUTO_XQUEUE=ON and a level 1..3, with one XQueue carrying its environment's
    knobs.
    """

    def __init__(self, auto: bool = True, policy: int = 1) -> None:
        self.auto = auto
        self.policy = policy
        self.processes: list[dict] = []
        self.xqueues: list[dict] = []
        self.requests: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                fake.requests.append(self.path)
                if self.path == "/policy":
                    body = {"policy": fake.policy}
                elif self.path == "/xqueues":
                    body = fake.view()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self._stopped = False

    def view(self) -> dict:
        processes, xqueues = list(self.processes), list(self.xqueues)
        if self.auto:
            auto_processes, auto_xqueues = self._clients_on_this_host()
            processes += auto_processes
            xqueues += auto_xqueues
        return {"processes": processes, "xqueues": xqueues}

    @staticmethod
    def _clients_on_this_host() -> tuple[list[dict], list[dict]]:
        processes, xqueues = [], []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                env = read_environ(pid)
                if effective_scheduler(env).kind != "global" or not shim_paths_from_maps(read_maps(pid)):
                    continue
            except (OSError, ValueError):
                continue
            processes.append({"pid": pid, "cmdline": "?"})
            try:
                level = int(env.get("XSCHED_AUTO_XQUEUE_LEVEL") or 1)
            except ValueError:
                level = 0
            if env.get("XSCHED_AUTO_XQUEUE") != "ON" or level not in (1, 2, 3):
                continue
            xqueues.append({"pid": pid, "handle": hex(pid << 36), "device": 0, "level": level,
                            "priority": int(env.get("XSCHED_AUTO_XQUEUE_PRIORITY") or 0),
                            "threshold": int(env.get("XSCHED_AUTO_XQUEUE_THRESHOLD") or 16),
                            "batch_size": int(env.get("XSCHED_AUTO_XQUEUE_BATCH_SIZE") or 8),
                            "ready": False, "suspended": False})
        return processes, xqueues

    def stop(self) -> None:
        """The xserver dies: its port stops answering (connections refused)."""
        if not self._stopped:
            self._stopped = True
            self.server.shutdown()
            self.server.server_close()
            self._thread.join(timeout=5)


@pytest.fixture()
def fake_xserver():
    server = FakeXServer()
    yield server
    server.stop()


@pytest.fixture()
def xserver_port(fake_xserver) -> int:
    return fake_xserver.port


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


SHIM = ["/x/libshimhip.so"]


def listing(pid: int, **fields) -> dict:
    """An xserver's /xqueues answer with one XQueue of ``pid``."""
    xqueue = {"pid": pid, "handle": "0x1", "device": 0, "priority": 0, "level": 1, "threshold": 16,
              "batch_size": 8, "ready": False, "suspended": False, **fields}
    return {"processes": [{"pid": pid, "cmdline": "python3 role"}], "xqueues": [xqueue]}


def refused():
    raise XServerUnavailable("ConnectionRefusedError: [Errno 111] Connection refused")


def never_called():
    raise AssertionError("the xserver must not be asked for this decision")


def test_decision_needs_every_piece_of_evidence():
    env = xsched_env(None, 1, 16, 8)
    listed = lambda: listing(1, priority=1)  # noqa: E731
    assert decide_xsched(SHIM, env, 1, listed)["xsched_active"]
    assert not decide_xsched([], env, 1, never_called)["xsched_active"]
    assert not decide_xsched(SHIM, env, 1, refused)["xsched_active"]
    local = decide_xsched(SHIM, {**env, "XSCHED_POLICY": "HPF"}, 77, never_called)
    assert local["xsched_active"] and local["scope"] == "local:77" and local["evidence"] == "environment"
    assert local["priority"] == 1 and local["scheduler"] == "local"
    assert not decide_xsched(SHIM, {**env, "XSCHED_POLICY": "HPF", "XSCHED_AUTO_XQUEUE": "OFF"}, 77,
                             never_called)["xsched_active"]


def test_glb_takes_the_xserver_s_priority(fake_xserver):
    # The environment says priority 1; the xserver's XQueue has 5: the scheduler's view wins.
    fake_xserver.auto = False
    fake_xserver.processes = [{"pid": 4242, "cmdline": "python3 role"}]
    fake_xserver.xqueues = [{"pid": 4242, "handle": "0xa", "device": 0, "priority": 5, "level": 1,
                             "threshold": 12, "batch_size": 3, "ready": False, "suspended": False},
                            {"pid": 4242, "handle": "0xb", "device": 0, "priority": 6, "level": 1,
                             "threshold": 12, "batch_size": 3, "ready": False, "suspended": False},
                            {"pid": 99, "handle": "0xc", "device": 0, "priority": 9, "level": 1,
                             "threshold": 1, "batch_size": 1, "ready": False, "suspended": False}]
    decision = decide_xsched(SHIM, xsched_env(None, 1, 16, 8), 4242,
                             lambda: query_xserver("127.0.0.1", fake_xserver.port),
                             f"127.0.0.1:{fake_xserver.port}")
    assert decision["xsched_active"] and decision["scope"] == "global" and decision["evidence"] == "xserver"
    assert (decision["priority"], decision["threshold"], decision["batch_size"]) == (5, 12, 3)
    assert decision["xqueues"] == 2
    assert "differ in priority" in decision["reason"] and "the xserver has 5" in decision["reason"]
    assert "/xqueues" in fake_xserver.requests


def test_glb_pid_not_listed_is_inactive(fake_xserver):
    fake_xserver.auto = False
    fake_xserver.xqueues = listing(99)["xqueues"]
    query = lambda: query_xserver("127.0.0.1", fake_xserver.port)  # noqa: E731
    started = time.monotonic()
    decision = decide_xsched(SHIM, xsched_env(None, 1, 16, 8), 4242, query, wait_s=0.5)
    assert time.monotonic() - started >= 0.5  # it waited for the asynchronous registration
    assert not decision["xsched_active"] and decision["evidence"] == "xserver"
    assert "the xserver never saw process 4242 connect" in decision["reason"]
    # Connected, but no XQueue: the environment says why, and nothing is waited for.
    fake_xserver.processes = [{"pid": 4242, "cmdline": "python3 role"}]
    level7 = decide_xsched(SHIM, xsched_env(None, 1, 16, 8, XSCHED_AUTO_XQUEUE_LEVEL="7"), 4242, query, wait_s=30)
    assert not level7["xsched_active"]
    assert "connected to the xserver but created no XQueue (XSCHED_AUTO_XQUEUE=ON, level 7" in level7["reason"]
    off = decide_xsched(SHIM, xsched_env(None, 1, 16, 8, XSCHED_AUTO_XQUEUE="OFF"), 4242, query, wait_s=30)
    assert not off["xsched_active"] and "XSCHED_AUTO_XQUEUE is not ON" in off["reason"]


def test_glb_registration_that_arrives_late_is_waited_for():
    answers = iter([{"processes": [], "xqueues": []}, {"processes": [], "xqueues": []}, listing(7, priority=3)])
    decision = decide_xsched(SHIM, xsched_env(None, 3, 16, 8), 7, lambda: next(answers), wait_s=5, poll_s=0.01)
    assert decision["xsched_active"] and decision["priority"] == 3


def test_glb_with_the_port_closed_is_inactive():
    port = free_port()
    decision = decide_xsched(SHIM, xsched_env(None, 1, 16, 8), 4242, lambda: query_xserver("127.0.0.1", port),
                             f"127.0.0.1:{port}")
    assert not decision["xsched_active"] and decision["evidence"] == "xserver"
    assert decision["reason"].startswith(f"XSCHED_SCHEDULER=GLB but no xserver answers on 127.0.0.1:{port}: ")


def test_a_port_that_greets_instead_of_http_is_no_xserver():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]

        def greet():
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"xserver HPF ready\n")

        thread = threading.Thread(target=greet, daemon=True)
        thread.start()
        decision = decide_xsched(SHIM, xsched_env(None, 1, 16, 8), 1, lambda: query_xserver("127.0.0.1", port),
                                 f"127.0.0.1:{port}")
        thread.join(timeout=5)
    assert not decision["xsched_active"] and "no xserver answers on" in decision["reason"]


def test_lcl_without_policy_is_app_managed():
    env = xsched_env(None, 1, 16, 8, XSCHED_SCHEDULER="LCL")
    decision = decide_xsched(SHIM, env, 1, never_called)
    assert not decision["xsched_active"] and decision["scheduler"] == "app"
    assert "app-managed" in decision["reason"]


def test_policy_gbl_is_no_policy():
    for extra in ({"XSCHED_SCHEDULER": "APP"}, {"XSCHED_SCHEDULER": "LCL"}):
        env = xsched_env(None, 1, 16, 8, XSCHED_POLICY="GBL", **extra)
        decision = decide_xsched(SHIM, env, 1, never_called)
        assert not decision["xsched_active"] and decision["scheduler"] == "app"
    env = xsched_env(None, 1, 16, 8, XSCHED_POLICY="GBL")
    del env["XSCHED_SCHEDULER"]
    assert not decide_xsched(SHIM, env, 1, never_called)["xsched_active"]
    # With XSCHED_SCHEDULER=GLB the invalid policy is ignored: the global scheduler decides.
    with_glb = decide_xsched(SHIM, xsched_env(None, 1, 16, 8, XSCHED_POLICY="GBL"), 1, lambda: listing(1))
    assert with_glb["xsched_active"] and with_glb["scope"] == "global"


def test_local_level_out_of_range_creates_no_xqueue():
    for level in ("0", "4", "7", "x"):
        env = xsched_env(None, 1, 16, 8, XSCHED_POLICY="HPF", XSCHED_AUTO_XQUEUE_LEVEL=level)
        decision = decide_xsched(["/x/libshimcuda.so"], env, 1, never_called)
        assert not decision["xsched_active"] and "creates no XQueue" in decision["reason"], level
    cuda2 = decide_xsched(["/x/libshimcuda.so"], xsched_env(None, 1, 16, 8, XSCHED_POLICY="HPF",
                                                            XSCHED_AUTO_XQUEUE_LEVEL="2"), 1, never_called)
    assert cuda2["xsched_active"] and cuda2["level"] == 2
    hip2 = decide_xsched(SHIM, xsched_env(None, 1, 16, 8, XSCHED_POLICY="HPF", XSCHED_AUTO_XQUEUE_LEVEL="2"), 1,
                         never_called)
    assert not hip2["xsched_active"] and "HIP implements level 1 only" in hip2["reason"]


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
    # Within the SLA (natively the FIFO gives ~500 ms); a P99 of 70 samples is nearly the maximum,
    # so one scheduling hiccup of this shared machine must not decide it (it reached 68 ms once).
    assert p99(high) < 100
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
    port = free_port()
    spec = sim_spec(tmp_path, overrides=[f"xsched.xserver_port={port}"], duration=2, role_env={
        "high": xsched_env(fake_shim, 1, 16, 8), "low": xsched_env(fake_shim, 0, 4, 2)})
    assert run_workload(tmp_path, spec).returncode == 0
    start = next(e for e in read_events(tmp_path / "out", "high") if e["event"] == "start")
    assert start["xsched"]["shim_mapped"] and not start["sim"]["xsched_active"]
    assert f"no xserver answers on 127.0.0.1:{port}" in start["sim"]["reason"]
    assert start["sim"]["evidence"] == "xserver"


GLB_CLIENT = """
import json, sys, threading
sys.path.insert(0, sys.argv[2])
from xsched_ops_workload.simclient import SimQueueClient
client = SimQueueClient(sys.argv[1], "high")
print(json.dumps(client.decision), flush=True)
def run(tag):
    client.run([0.01, 0.01])
    print("done " + tag, flush=True)
for line in sys.stdin:
    threading.Thread(target=run, args=(line.strip(),), daemon=True).start()
"""


def test_dead_xserver_hangs_global_queues_only(tmp_path, fake_shim, fake_xserver):
    socket_path = str(tmp_path / "dev.sock")
    device_log = tmp_path / "device.jsonl"
    device = SimDevice(socket_path, "127.0.0.1", fake_xserver.port, EventLog(str(device_log)))
    device_thread = threading.Thread(target=device.serve_forever, daemon=True)
    device_thread.start()
    env = {**os.environ, **xsched_env(fake_shim, 1, 16, 8)}
    client = subprocess.Popen([sys.executable, "-c", GLB_CLIENT, socket_path, str(SOURCE_DIR.parent)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in client.stdout], daemon=True).start()
    native = None
    try:
        decision = json.loads(lines.get(timeout=20))
        assert decision["xsched_active"] and decision["scope"] == "global" and decision["evidence"] == "xserver"
        client.stdin.write("before\n")
        client.stdin.flush()
        assert lines.get(timeout=10) == "done before"  # served while the xserver lives
        native = SimQueueClient(socket_path, "low")  # this test process: no shim, a native queue
        assert native.decision["xsched_active"] is False

        fake_xserver.stop()
        deadline = time.monotonic() + 10
        lost = []
        while not lost and time.monotonic() < deadline:
            lost = [e for e in map(json.loads, device_log.read_text().splitlines()) if e["event"] == "xserver_lost"]
            time.sleep(0.05)
        assert len(lost) == 1 and [q["role"] for q in lost[0]["queues"]] == ["high"]

        client.stdin.write("after\n")
        client.stdin.flush()
        native_done = threading.Event()
        threading.Thread(target=lambda: (native.run([0.01, 0.01]), native_done.set()), daemon=True).start()
        assert native_done.wait(timeout=10)  # the native queue keeps running
        with pytest.raises(queue.Empty):
            lines.get(timeout=1.5)  # the global queue's request hangs
        assert client.poll() is None
    finally:
        client.kill()
        client.wait(timeout=10)
        if native is not None:
            native.close()
        device.stop()
        device_thread.join(timeout=10)
    assert not device_thread.is_alive()
    assert json.loads(device_log.read_text().splitlines()[-1])["xserver_lost"] is True


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


def test_every_workload_module_imports_only_the_standard_library_and_its_own_package() -> None:
    # The package is copied into the target as it is (every *.py of its folder) and run by the
    # target's python3, which has none of the host package's dependencies (torch is imported lazily).
    import ast

    lazily_allowed = {"torch", "torchvision"}
    for module in sorted(SOURCE_DIR.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "xsched_ops_workload" or (
                    top in lazily_allowed and node.col_offset > 0), f"{module.name} imports {name}"


def test_the_simulated_device_s_names_stay_where_the_launcher_and_roles_import_them() -> None:
    from xsched_ops_workload import simclient, simdevice, xsched_decision

    assert simdevice.SimQueueClient is simclient.SimQueueClient
    assert simdevice.decide_xsched is xsched_decision.decide_xsched
    assert {"simdevice.py", "simclient.py", "xsched_decision.py"} <= {p.name for p in SOURCE_DIR.glob("*.py")}
