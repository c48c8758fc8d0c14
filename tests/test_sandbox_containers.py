"""Sandbox containers on a real Docker engine: create, scenarios, the real loader, removal.

Every container made here has a name with this run's unique prefix and is removed at the end
of its test, also on failure. The sandbox image is built once (or found cached) per session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from xsched_ops import cli
from xsched_ops.errors import SandboxError
from xsched_ops.sandbox import (
    SCENARIOS,
    create_sandbox,
    list_sandboxes,
    remove_all,
    remove_sandbox,
    scenarios,
)
from xsched_ops.sandbox.image import SANDBOX_LABEL, ensure_image
from xsched_ops.sandbox.probe import run_loader_probe
from xsched_ops.target.container import MANAGED_LABEL, ContainerTarget

pytestmark = pytest.mark.docker

RUN_PREFIX = f"xot-sbx-{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="session")
def docker_client(docker_engine: None) -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient) -> str:
    return ensure_image(docker_client)


@pytest.fixture
def sandbox_name(sandbox_image: str) -> Iterator[Callable[[str], str]]:
    """Makes unique container names and removes those containers afterwards, whatever happens."""
    made: list[str] = []

    def make(label: str) -> str:
        name = f"{RUN_PREFIX}{label}-{uuid.uuid4().hex[:4]}"
        made.append(name)
        return name

    yield make
    client = docker.from_env(timeout=60)
    try:
        for name in made:
            try:
                client.containers.get(name).remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
    finally:
        client.close()


def container_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.containers.get(name)
    except docker.errors.NotFound:
        return False
    return True


def test_cli_seed_then_ok(sandbox_name: Callable[[str], str], docker_client: docker.DockerClient) -> None:
    """Issue 3's acceptance: seed fails with the HipCommand symbol error, ok loads the shim."""
    seed_name, ok_name = sandbox_name("seed"), sandbox_name("ok")
    assert cli.invoke(["sandbox", "create", seed_name, "--scenario", "seed"]) == 0
    assert cli.invoke(["sandbox", "create", ok_name, "--scenario", "ok"]) == 0

    argv = ["python3", "-c", "print('started')"]
    for name in (seed_name, ok_name):
        labels = docker_client.containers.get(name).labels
        assert labels[MANAGED_LABEL] == "1" and labels[SANDBOX_LABEL] == "1"
    with ContainerTarget.open(seed_name) as target:
        assert target.environment()["LD_LIBRARY_PATH"].startswith(scenarios.LEGACY_LIB + ":")
        failed = target.exec(argv, env={**target.environment(), "LD_PRELOAD": scenarios.SHIM}, timeout=60)
    assert failed.exit_code != 0
    assert "symbol lookup error" in failed.stderr
    assert f"{scenarios.SHIM}: undefined symbol: _ZTIN6xsched3hip10HipCommandE" in failed.stderr
    with ContainerTarget.open(ok_name) as target:
        worked = target.exec(argv, env={**target.environment(), "LD_PRELOAD": scenarios.SHIM}, timeout=60)
    assert worked.exit_code == 0, worked.stderr
    assert worked.stdout.strip() == "started"

    assert docker_client.containers.get(seed_name).labels["org.xsched-ops.scenario"] == "seed"
    assert cli.invoke(["sandbox", "rm", seed_name]) == 0
    assert not container_exists(docker_client, seed_name)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_real_loader_matches_scenario(name: str, sandbox_name: Callable[[str], str]) -> None:
    """The declared loader outcome of every scenario is what the container's loader does."""
    scenario = SCENARIOS[name]
    container_name = sandbox_name(name)
    info = create_sandbox(container_name, name)
    assert info.scenario == name and info.status == "running"
    with ContainerTarget.open(container_name) as target:
        probe = run_loader_probe(target, scenario)
        assert probe.mismatches(scenario.loader) == [], (probe.exit_code, probe.stderr)
        assert not target.exists("/dev/kfd")  # every sandbox: no GPU
        for key, value in scenario.env.items():
            assert target.environment()[key] == value
        for placement in scenario.placements:
            assert target.exists(placement.destination), placement.destination
        for path in scenario.removals:
            assert not target.exists(path), path


def test_stale_ipc_state_is_there(sandbox_name: Callable[[str], str]) -> None:
    name = sandbox_name("ipc")
    create_sandbox(name, "stale-ipc")
    with ContainerTarget.open(name) as target:
        assert target.exists(scenarios.STALE_IPC_FILE)
        segments = target.exec(["ipcs", "-m"], env={"PATH": "/usr/bin:/bin"}, timeout=30)
        assert "0x0000beef" in segments.stdout
        assert target.exec(["pgrep", "-x", "xserver"], env={"PATH": "/usr/bin:/bin"}, timeout=30).exit_code == 1


XSERVER_POLICY = """
import sys, time, urllib.request
deadline = time.monotonic() + 10
while True:
    try:
        print(urllib.request.urlopen("http://127.0.0.1:%s/policy" % sys.argv[1], timeout=2).read().decode())
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
"""


def test_xserver_running_scenario_holds_sigint_and_stops_on_sigquit(sandbox_name: Callable[[str], str]) -> None:
    """An xserver started in the background by a script ignores SIGINT (XSCHED-FACTS.md section 4)."""
    name = sandbox_name("xserver")
    create_sandbox(name, "xserver-running")
    environment = {"PATH": "/usr/bin:/bin"}
    with ContainerTarget.open(name) as target:
        reply = target.exec(["python3", "-c", XSERVER_POLICY, "50000"], env=environment, timeout=30)
        assert reply.stdout.strip() == '{"policy" : 1}', reply.stderr
        assert "0x00000001" in target.exec(["ipcs", "-q"], env=environment, timeout=30).stdout
        assert target.exec(["pkill", "-INT", "-x", "xserver"], env=environment, timeout=30).exit_code == 0
        time.sleep(1)
        assert target.exec(["pgrep", "-x", "xserver"], env=environment, timeout=30).exit_code == 0
        assert target.exec(["pkill", "-QUIT", "-x", "xserver"], env=environment, timeout=30).exit_code == 0
        deadline = time.monotonic() + 10
        while target.exec(["pgrep", "-x", "xserver"], env=environment, timeout=30).exit_code == 0:
            assert time.monotonic() < deadline, "xserver did not stop on SIGQUIT"
            time.sleep(0.1)
        assert "0x00000001" not in target.exec(["ipcs", "-q"], env=environment, timeout=30).stdout
        log = target.read_file("/tmp/xserver.log").decode()
    assert "scheduler created with policy HPF" in log and "HTTP server listening on port 50000" in log


def test_name_collision_and_removal_rules(sandbox_name: Callable[[str], str], sandbox_image: str,
                                          docker_client: docker.DockerClient,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    name = sandbox_name("twice")
    create_sandbox(name, "ok")
    capsys.readouterr()
    assert cli.invoke(["sandbox", "create", name]) == SandboxError.exit_code
    error = capsys.readouterr().err
    assert f"xsched-ops sandbox rm {name}" in error and "Traceback" not in error

    # A container of the same image started by hand inherits the image's label but is no sandbox.
    stranger = sandbox_name("stranger")
    docker_client.containers.run(sandbox_image, name=stranger, detach=True)
    with pytest.raises(SandboxError, match="not a sandbox"):
        remove_sandbox(stranger)
    assert container_exists(docker_client, stranger)
    assert stranger not in {info.name for info in list_sandboxes()}

    with pytest.raises(SandboxError, match="no sandbox named"):
        remove_sandbox(f"{RUN_PREFIX}never-made")


def test_list_and_remove_all(sandbox_image: str, docker_client: docker.DockerClient,
                             capsys: pytest.CaptureFixture[str]) -> None:
    group = f"{RUN_PREFIX}group-{uuid.uuid4().hex[:4]}-"
    first, second = f"{group}a", f"{group}b"
    create_sandbox(first, "policy-local")
    try:
        create_sandbox(second, "seed")
        capsys.readouterr()
        assert cli.invoke(["sandbox", "list"]) == 0
        listing = capsys.readouterr().out
        assert first in listing and "policy-local" in listing and second in listing
        assert remove_all(name_prefix=group) == [first, second]
        assert not container_exists(docker_client, first) and not container_exists(docker_client, second)
    finally:
        for name in (first, second):
            if container_exists(docker_client, name):
                docker_client.containers.get(name).remove(force=True)


def test_unknown_scenario_exits_before_building(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.invoke(["sandbox", "create", f"{RUN_PREFIX}x", "--scenario", "sed"]) == 2
    error = capsys.readouterr().err
    assert "unknown sandbox scenario 'sed'" in error and "Traceback" not in error


def test_image_is_labelled_and_keeps_containers_alive(docker_client: docker.DockerClient, sandbox_image: str) -> None:
    config = docker_client.images.get(sandbox_image).attrs["Config"]
    assert config["Labels"][SANDBOX_LABEL] == "1"
    assert config["Cmd"] == ["sleep", "infinity"]
    assert any(entry.startswith("PATH=") for entry in config["Env"])
    assert sandbox_image == ensure_image(docker_client)  # reused, not rebuilt
