"""`xsched-ops sandbox prune` on a real engine, as a user runs it (a real process).

The engine is shared (other test runs may have their own sandbox tags), so every prune here is
limited with ``--match`` to the throwaway tags this test makes: ``xsched-ops-sandbox:prunetest-*``,
``docker tag`` copies of the current image (a tag costs no disk). The current tag is matched
too where a test checks that it stays. Tags and containers made here are removed at the end.
The decisions themselves are tested without Docker in test_sandbox_prune_plan.py.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from xsched_ops.sandbox.image import REPOSITORY
from xsched_ops.target.container import MANAGED_LABEL

pytestmark = pytest.mark.docker


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xsched_ops", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture
def client(docker_engine: None) -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture
def throwaway_tag(client: docker.DockerClient, sandbox_image: str) -> Iterator[Callable[[], str]]:
    """Makes `xsched-ops-sandbox:prunetest-<random>` tags of the current image; removes what is left of them."""
    made: list[str] = []

    def make() -> str:
        version = f"prunetest-{uuid.uuid4().hex[:10]}"
        assert client.images.get(sandbox_image).tag(REPOSITORY, version)
        made.append(f"{REPOSITORY}:{version}")
        return made[-1]

    yield make
    for tag in made:
        try:
            client.api.remove_image(tag)  # by name: only untags (the current tag keeps the image)
        except docker.errors.ImageNotFound:
            pass


@pytest.fixture
def own_image(client: docker.DockerClient) -> Iterator[str]:
    """A distinct, tiny image in the sandbox repository (one 200 kB file), so that removing its tag deletes it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        member = tarfile.TarInfo("payload")
        member.size = 200_000
        archive.addfile(member, io.BytesIO(os.urandom(member.size)))
    version = f"prunetest-own-{uuid.uuid4().hex[:10]}"
    client.api.import_image_from_data(buffer.getvalue(), repository=REPOSITORY, tag=version)
    tag = f"{REPOSITORY}:{version}"
    assert exists(client, tag)
    yield tag
    try:
        client.api.remove_image(tag)
    except docker.errors.ImageNotFound:
        pass


def version(tag: str) -> str:
    return tag.partition(":")[2]


def test_dry_run_lists_the_tag_and_keeps_it(client: docker.DockerClient, throwaway_tag: Callable[[], str]) -> None:
    tag = throwaway_tag()
    result = run_cli("sandbox", "prune", "--dry-run", "--match", version(tag))
    assert result.returncode == 0, result.stderr
    assert f"would remove {tag}" in result.stdout
    assert "total: 1 image would be removed" in result.stdout
    assert exists(client, tag)


def test_dry_run_json(client: docker.DockerClient, sandbox_image: str, throwaway_tag: Callable[[], str]) -> None:
    tag = throwaway_tag()
    result = run_cli("sandbox", "prune", "--dry-run", "--json", "--match", version(tag), "--match", version(sandbox_image))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # stdout holds the document and nothing else
    assert document["version"] == 1 and document["dry_run"] is True and document["current"] == sandbox_image
    entries = {entry["tag"]: entry for entry in document["images"]}
    assert set(entries) == {tag, sandbox_image}
    assert entries[tag]["action"] == "remove"
    assert entries[tag]["freed"] == 0 and sandbox_image in entries[tag]["kept_by"]  # the current tag keeps the image
    assert entries[sandbox_image]["action"] == "keep"
    assert entries[sandbox_image]["reason"] in ("current", "in-use")
    assert document["total"]["images"] == 1
    assert exists(client, tag)


def test_prune_removes_the_old_tag_and_keeps_the_current(client: docker.DockerClient, sandbox_image: str,
                                                         throwaway_tag: Callable[[], str]) -> None:
    tag = throwaway_tag()
    result = run_cli("sandbox", "prune", "--match", version(tag), "--match", version(sandbox_image))
    assert result.returncode == 0, result.stderr
    removed = [line for line in result.stdout.splitlines() if line.startswith("removed ")]
    assert len(removed) == 1 and tag in removed[0] and "MB" in removed[0]
    assert result.stdout.splitlines()[-1].startswith("total: 1 image removed")
    assert f"kept {sandbox_image}" in result.stderr
    assert not exists(client, tag)
    assert exists(client, sandbox_image)


def test_prune_deletes_an_image_no_other_tag_keeps(client: docker.DockerClient, own_image: str) -> None:
    result = run_cli("sandbox", "prune", "--match", version(own_image))
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("removed ")]
    assert own_image in line and "kB" in line and "nothing freed" not in line
    assert result.stdout.splitlines()[-1] == f"total: 1 image removed, {line.split()[-2]} kB freed"
    assert not exists(client, own_image)


def test_a_tag_used_by_a_stopped_container_is_kept_and_named(client: docker.DockerClient,
                                                             throwaway_tag: Callable[[], str]) -> None:
    tag = throwaway_tag()
    name = f"xo-prunetest-{uuid.uuid4().hex[:8]}"
    container = client.containers.create(tag, name=name, labels={MANAGED_LABEL: "1", "org.xsched-ops.test": "1"})
    try:
        result = run_cli("sandbox", "prune", "--match", version(tag))
        assert result.returncode == 0, result.stderr
        assert f"kept {tag}: in use by container {name}" in result.stderr
        assert "total: 0 images removed" in result.stdout
        assert exists(client, tag)

        result = run_cli("sandbox", "prune", "--json", "--all", "--match", version(tag))
        assert result.returncode == 0, result.stderr
        [entry] = json.loads(result.stdout)["images"]
        assert (entry["action"], entry["reason"], entry["containers"]) == ("keep", "in-use", [name])
        assert exists(client, tag)
    finally:
        container.remove(force=True)


def test_no_engine_is_one_line_without_traceback(docker_engine: None) -> None:
    result = run_cli("--docker-host", "unix:///nonexistent/docker.sock", "sandbox", "prune")
    assert result.returncode == 10
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no Docker engine" in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""
