"""Shared fixtures.

Tests that need a Docker engine are marked ``docker``. In CI (``CI`` set) a missing engine is a
failure; elsewhere such tests skip with the reason.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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
