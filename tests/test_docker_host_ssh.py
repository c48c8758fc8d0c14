"""``--docker-host ssh://USER@HOST`` over a real SSH connection (issue 15, part 7): an sshd of the test's
own on a loopback port, its own host and client keys, and the engine of this host reached through it
(``docker system dial-stdio`` on the far side, as the docker CLI does).

Needs the extra ``ssh`` (paramiko), the OpenSSH client and server (``apt-get install openssh-server``)
and root; skipped otherwise, with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_faults_container import hf_sandbox  # noqa: F401 - the fixture

pytestmark = pytest.mark.docker

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def loopback_sshd(tmp_path: Path):
    """``(port, folder with an ssh wrapper that uses the test's key)``; the sshd is stopped at the end."""
    pytest.importorskip("paramiko", reason="the extra `ssh` (paramiko) is not installed")
    if not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")):
        pytest.skip("the OpenSSH server and client are not installed (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd logs in as root")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / key)], check=True)
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    port = _free_port()
    config = tmp_path / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {tmp_path / 'host_key'}
AuthorizedKeysFile {tmp_path / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile {tmp_path / 'sshd.pid'}
""")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    log = (tmp_path / "sshd.log").open("w")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    (wrapper / "ssh").write_text(
        "#!/bin/sh\n"
        f"exec {shutil.which('ssh')} -i {tmp_path / 'client_key'} -o StrictHostKeyChecking=no "
        '-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes "$@"\n')
    (wrapper / "ssh").chmod(0o755)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "sshd.log").read_text()
                assert time.monotonic() < deadline, "sshd did not listen"
                time.sleep(0.2)
        yield port, wrapper
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_a_container_is_reached_through_ssh(loopback_sshd, hf_sandbox) -> None:  # noqa: F811
    port, wrapper = loopback_sshd
    name = hf_sandbox("ok")
    environment = {**os.environ, "PATH": f"{wrapper}:{os.environ['PATH']}"}
    environment.pop("DOCKER_HOST", None)
    address = f"ssh://root@127.0.0.1:{port}"
    completed = subprocess.run([sys.executable, "-m", "xsched_ops", "--docker-host", address, "info",
                                "--container", name], capture_output=True, text=True, env=environment, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert name in completed.stdout and address in completed.stdout, completed.stdout

    # A port nobody listens on: one line, exit 10, and what to check.
    closed = f"ssh://root@127.0.0.1:{_free_port()}"
    completed = subprocess.run([sys.executable, "-m", "xsched_ops", "--docker-host", closed, "info",
                                "--container", name], capture_output=True, text=True, env=environment, timeout=120)
    assert completed.returncode == 10, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"no Docker engine answers at {closed}" in lines[0], completed.stderr
