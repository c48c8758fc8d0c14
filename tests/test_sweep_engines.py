"""A sweep spread over two Docker engines, one of them reached over ``ssh://`` (issue 17, parts 4 and 5).

Two real engines: the main one and a second dockerd of the tests' own (``second_engine.py``), a
sandbox container (scenario ok) on each, and the real CLI (a subprocess) running a short sim sweep
over both with ``--target``. Expected: every cell valid exactly once, both targets used, every
record naming its engine, container and image id. Then the second engine is stopped while one of
its cells runs: the sweep still ends with every cell valid exactly once (the lost cell ran again
on the main engine), the lost target is in the summary and the manifest, and the same command
again skips every cell. Last, the second engine is reached through an sshd of the test's own on a
loopback port (``ssh://root@127.0.0.1:PORT``; the sshd sets ``DOCKER_HOST`` to the second engine's
socket for ``docker system dial-stdio`` on the far side): the same sweep over the main engine and
the ssh host runs every cell once, on both.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from second_engine import SecondEngine, start_second_engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FAST = ["--mode", "baseline", "--duration", "3", "--set", "warmup_s=2", "--set", "drain_s=3"]
SWEEP_TIMEOUT_S = 420


@pytest.fixture(scope="module")
def sweep_engine(sandbox_image: str):
    """A second engine of this module's own: the session's ``second_engine`` has a fixed socket path,
    which another test session on the same machine may start, stop and unlink at the same time."""
    try:
        with start_second_engine(sandbox_image, name=f"sw{uuid.uuid4().hex[:6]}") as engine:
            yield engine
    except RuntimeError as err:
        pytest.fail(f"the second engine could not be started: {err}")


@pytest.fixture
def two_targets(sweep_engine: SecondEngine, new_sandbox):
    """(target on the main engine, target on the second engine, the second engine)."""
    from xsched_ops.sandbox import create_sandbox

    main = new_sandbox("ok")
    name = f"xo-engine2-{uuid.uuid4().hex[:8]}"
    create_sandbox(name, "ok", docker_host=sweep_engine.url)
    try:
        yield main, f"{name}@{sweep_engine.url}", sweep_engine
    finally:
        if not sweep_engine.answers():  # stopped by a test: the next one needs it
            sweep_engine.start()
        sweep_engine.docker("rm", "-f", name, check=False)


def sweep_argv(folder: Path, grid: str, *targets: str) -> list[str]:
    argv = [sys.executable, "-m", "xsched_ops", "sweep", "intensive", "--grid", grid, *FAST,
            "--sweep-dir", str(folder), "--json"]
    for target in targets:
        argv += ["--target", target]
    return argv


def valid_once(manifest: dict) -> None:
    """Every cell valid, with exactly one valid attempt; its run folder on disk."""
    for cell in manifest["cells"]:
        assert cell["status"] == "valid", cell
        assert [attempt["status"] for attempt in cell["attempts"]].count("valid") == 1, cell


def test_sweep_over_two_engines_runs_every_cell_once_on_both(two_targets, tmp_path: Path) -> None:
    main, engine2_target, engine2 = two_targets
    folder = tmp_path / "sweep"
    completed = subprocess.run(sweep_argv(folder, "low.batch=8,16,32,64", main, engine2_target),
                               capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    document = json.loads(completed.stdout)
    manifest = document["manifest"]
    valid_once(manifest)
    assert manifest["schema_version"] == 3 and document["targets_lost"] == []
    records = [cell["target"] for cell in manifest["cells"]]
    assert {record["label"] for record in records} == {main, engine2_target}  # both used
    assert {record["engine"] for record in records} == {"unix:///var/run/docker.sock", engine2.url}
    for record in records:
        assert record["container"] in (main, engine2_target.split("@")[0])
        assert record["image_id"].startswith("sha256:") and record["image"].startswith("xsched-ops-sandbox:")
    # The same image on both engines (docker save | docker load keeps its id).
    assert len({record["image_id"] for record in records}) == 1
    assert sorted(path.name for path in (folder / "runs").iterdir()) == sorted(
        cell["run_id"] for cell in manifest["cells"])


def test_a_stopped_engine_loses_its_cell_to_the_other_and_resume_skips(two_targets, tmp_path: Path) -> None:
    main, engine2_target, engine2 = two_targets
    folder = tmp_path / "sweep"
    argv = sweep_argv(folder, "low.batch=8,16,32", main, engine2_target)
    stdout_path = tmp_path / "stdout.json"
    with open(stdout_path, "w") as stdout_file:  # stderr is read here, line by line, stdout is not
        process = subprocess.Popen(argv, stdout=stdout_file, stderr=subprocess.PIPE, text=True)
    stderr_lines: list[str] = []
    stopped_at: list[float] = []

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr_lines.append(line)
            # The first cell on the second engine: stop the engine while its trial runs.
            if not stopped_at and line.startswith("cell ") and f" on {engine2_target}" in line:
                time.sleep(6)
                engine2.stop()
                stopped_at.append(time.monotonic())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        process.wait(timeout=SWEEP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    watcher.join(30)
    stdout = stdout_path.read_text()
    stderr = "".join(stderr_lines)
    assert stopped_at, f"no cell went to the second engine:\n{stderr[-3000:]}"
    assert process.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    document = json.loads(stdout)
    manifest = document["manifest"]
    valid_once(manifest)
    # The lost cell: one attempt lost on the second engine, then valid on the main one.
    lost = [cell for cell in manifest["cells"] if any(a["status"] == "lost" for a in cell["attempts"])]
    assert len(lost) == 1, manifest["cells"]
    assert [(a["status"], a["target"]) for a in lost[0]["attempts"]] == [("lost", engine2_target), ("valid", main)]
    assert lost[0]["target"]["label"] == main
    # Reported: in the summary, the manifest's targets and its events.
    assert len(document["targets_lost"]) == 1 and document["targets_lost"][0].startswith(
        f"{engine2_target}: lost during cell {lost[0]['cell_id']}")
    assert manifest["targets"][engine2_target]["state"] == "lost"
    assert [event["target"] for event in manifest["target_events"]] == [engine2_target]
    assert f"target {engine2_target} lost during cell {lost[0]['cell_id']}" in stderr

    # The same command again, the second engine still stopped: every cell skipped, none run again.
    runs_before = sorted(path.name for path in (folder / "runs").iterdir())
    again = subprocess.run(argv, capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 already valid, 0 to run" in again.stderr
    assert f"target {engine2_target} is not used: no Docker engine answers at {engine2.url}" in again.stderr
    resumed = json.loads(again.stdout)
    assert [cell["run_id"] for cell in resumed["manifest"]["cells"]] == [cell["run_id"] for cell in manifest["cells"]]
    assert sorted(path.name for path in (folder / "runs").iterdir()) == runs_before
    assert resumed["manifest"]["targets"][engine2_target]["state"] == "unreachable"


SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ssh_to_engine(sweep_engine: SecondEngine, tmp_path: Path):
    """``(ssh://root@127.0.0.1:PORT, environment whose ssh uses the test's key)``: an sshd of the test's own
    whose sessions see ``DOCKER_HOST`` = the second engine; stopped at the end."""
    pytest.importorskip("paramiko", reason="the extra `ssh` (paramiko) is not installed")
    if not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")):
        pytest.skip("the OpenSSH server and client are not installed (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd logs in as root")
    keys = tmp_path / "ssh"
    keys.mkdir()
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / key)], check=True)
    (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
    port = _free_port()
    config = keys / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {keys / 'host_key'}
AuthorizedKeysFile {keys / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv DOCKER_HOST={sweep_engine.url}
PidFile {keys / 'sshd.pid'}
""")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    log = (keys / "sshd.log").open("w")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    wrapper = keys / "bin"
    wrapper.mkdir()
    (wrapper / "ssh").write_text(
        "#!/bin/sh\n"
        f"exec {shutil.which('ssh')} -i {keys / 'client_key'} -o StrictHostKeyChecking=no "
        '-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes "$@"\n')
    (wrapper / "ssh").chmod(0o755)
    environment = {**os.environ, "PATH": f"{wrapper}:{os.environ['PATH']}"}
    environment.pop("DOCKER_HOST", None)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (keys / "sshd.log").read_text()
                assert time.monotonic() < deadline, "sshd did not listen"
                time.sleep(0.2)
        yield f"ssh://root@127.0.0.1:{port}", environment
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_sweep_over_the_main_engine_and_an_ssh_host(two_targets, ssh_to_engine, tmp_path: Path) -> None:
    main, engine2_target, engine2 = two_targets
    address, environment = ssh_to_engine
    ssh_target = f"{engine2_target.split('@')[0]}@{address}"  # the same container, reached over ssh
    folder = tmp_path / "sweep"
    completed = subprocess.run(sweep_argv(folder, "low.batch=8,16,32", main, ssh_target), capture_output=True,
                               text=True, timeout=SWEEP_TIMEOUT_S, env=environment)
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    assert "Traceback" not in completed.stderr
    manifest = json.loads(completed.stdout)["manifest"]
    valid_once(manifest)
    records = [cell["target"] for cell in manifest["cells"]]
    assert all(record["image_id"].startswith("sha256:") for record in records)
    # Cells ran over ssh. The SDK's ssh transport can break its pipe when an exec's connection closes
    # (docker/transport/sshconn.py: BrokenPipeError in close()); such a cell runs again, and if it
    # ran again elsewhere, the break is what the manifest reports for the ssh host.
    over_ssh = [attempt for cell in manifest["cells"] for attempt in cell["attempts"] if attempt["target"] == ssh_target]
    assert over_ssh, manifest["cells"]
    by_ssh = [record for record in records if record["label"] == ssh_target]
    if by_ssh:
        assert {record["engine"] for record in by_ssh} == {address}
    else:
        assert manifest["target_events"] and all("the connection to its engine broke" in event["reason"]
                                                  for event in manifest["target_events"]), manifest
    assert {record["label"] for record in records} <= {main, ssh_target}
