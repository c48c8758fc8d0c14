"""Shared fixtures.

Tests that need a Docker engine are marked ``docker``. In CI (``CI`` set) a missing engine is a
failure; elsewhere such tests skip with the reason.
"""

from __future__ import annotations

import os
import signal

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    # A shell starts a background job (`.ci/run &`, nohup) with SIGINT ignored, and an ignored signal
    # stays ignored through exec: the Ctrl-C tests and every xserver they start (which must stop
    # cleanly on SIGINT) would then never see one. Python's own handler here, SIG_DFL in children.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _engine_problem() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        client.close()
    except Exception as err:  # any failure means: no engine here
        return f"no Docker engine answers ({type(err).__name__}: {err})"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = _engine_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{problem}; CI must have an engine (.ci/run starts one)")
    pytest.skip(f"{problem}; start one with `sudo dockerd &` or run `bash .ci/run`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every test marked `docker` gets the engine fixture, so that the skip/fail rule is in one place.
    for item in items:
        if item.get_closest_marker("docker") is not None:
            item.fixturenames.insert(0, "docker_engine")


@pytest.fixture(scope="session")
def sandbox_image(docker_engine: None) -> str:
    """The sandbox image (built once, then cached by the hash of its inputs)."""
    import docker

    from xsched_ops.sandbox.image import ensure_image

    client = docker.from_env(timeout=600)
    try:
        return ensure_image(client)
    finally:
        client.close()


def _labelled_container(image: str, name: str, running: bool = True, **extra: object):
    import docker

    from xsched_ops.target.container import MANAGED_LABEL

    client = docker.from_env()
    container = client.containers.run(
        image, name=name, detach=True, init=True,
        labels={MANAGED_LABEL: "1", "org.xsched-ops.test": "1"}, **extra,
    )
    if not running:
        container.stop(timeout=0)
    return client, container


@pytest.fixture(scope="module")
def scratch_container(sandbox_image: str):
    """A plain running container of the sandbox image, with a stale LD_LIBRARY_PATH in its Env."""
    import uuid

    from xsched_ops.target.container import ContainerTarget

    name = f"xo-test-{uuid.uuid4().hex[:8]}"
    client, container = _labelled_container(sandbox_image, name, environment={"LD_LIBRARY_PATH": "/stale/lib"})
    target = ContainerTarget.open(name)
    try:
        yield target
    finally:
        target.close()
        container.remove(force=True)
        client.close()


@pytest.fixture
def stopped_container_name(sandbox_image: str):
    import uuid

    name = f"xo-stopped-{uuid.uuid4().hex[:8]}"
    client, container = _labelled_container(sandbox_image, name, running=False)
    try:
        yield name
    finally:
        container.remove(force=True)
        client.close()


@pytest.fixture
def new_sandbox(sandbox_image: str):
    """Makes sandbox containers (``new_sandbox(scenario) -> name``), each with a unique name; removes them after the test."""
    import uuid

    from xsched_ops.sandbox import create_sandbox, remove_sandbox

    created: list[str] = []

    def make(scenario: str) -> str:
        name = f"xo-{scenario}-{uuid.uuid4().hex[:8]}"
        create_sandbox(name, scenario)
        created.append(name)
        return name

    yield make
    for name in created:
        remove_sandbox(name)
