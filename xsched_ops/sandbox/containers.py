"""Creating, listing and removing sandbox containers.

A sandbox is a container of the sandbox image carrying the labels ``org.xsched-ops.managed=1``,
``org.xsched-ops.sandbox=1`` and ``org.xsched-ops.scenario=<name>``, with the scenario's
configured ``Env``, the XSched-like install of the scenario's platform copied to the seed's prefix and the scenario
applied on top. Only containers with the sandbox label are ever removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors
from docker.models.containers import Container

from xsched_ops.errors import SandboxError, SandboxNotFoundError
from xsched_ops.sandbox import scenarios
from xsched_ops.sandbox.image import DEFAULT_PATH, SANDBOX_LABEL, ensure_image
from xsched_ops.sandbox.install import InstallBuild, ensure_install
from xsched_ops.sandbox.scenarios import PREFIX, Scenario
from xsched_ops.target import engine
from xsched_ops.target.container import MANAGED_LABEL, ContainerTarget

ProgressCallback = Callable[[str], None]

SCENARIO_LABEL = "org.xsched-ops.scenario"
INSTALL_LABEL = "org.xsched-ops.sandbox.install"

# Set-up commands run with this environment, not the scenario's (whose LD_PRELOAD may be broken).
SETUP_ENV = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class SandboxInfo:
    name: str
    scenario: str
    status: str
    image: str
    id: str


def _info(container: Container) -> SandboxInfo:
    labels = container.labels or {}
    image = container.attrs.get("Config", {}).get("Image", "")
    return SandboxInfo(name=container.name, scenario=labels.get(SCENARIO_LABEL, "?"), status=container.status,
                       image=image, id=container.id[:12])


# Containers made by create_sandbox. The image's own label alone is not enough: every container
# of the image inherits it, including ones people start by hand with `docker run`.
_SANDBOX_FILTER = {"label": [f"{SANDBOX_LABEL}=1", f"{MANAGED_LABEL}=1"]}


def _is_sandbox(container: Container) -> bool:
    labels = container.labels or {}
    return labels.get(SANDBOX_LABEL) == "1" and labels.get(MANAGED_LABEL) == "1"


def create_sandbox(name: str, scenario: str = "ok", docker_host: str | None = None,
                   progress: ProgressCallback | None = None, mirror: str | None = None) -> SandboxInfo:
    """Create and start sandbox ``name`` with ``scenario`` applied; return what was made.

    ``mirror``: the Debian mirror for building the image when the engine lacks it (default:
    ``$XSCHED_OPS_DEBIAN_MIRROR``, then the host's apt configuration)."""
    report = progress or (lambda _message: None)
    chosen = scenarios.get(scenario)
    client = engine.connect(docker_host)
    address = engine.engine_address(docker_host)
    try:
        _refuse_existing(client, name)
        tag = ensure_image(client, report, mirror=mirror)
        build = ensure_install(report)
        container = _start_container(client, name, tag, chosen, build)
    except BaseException:
        client.close()
        raise
    # From here the target owns the client and closes it.
    target = ContainerTarget(client, container, address)
    try:
        _apply(target, chosen, build, report)
        container.reload()
        info = _info(container)
    except BaseException:
        _force_remove(container)
        target.close()
        raise
    target.close()
    report(f"sandbox {name}: ready (scenario {chosen.name})")
    return info


def _refuse_existing(client: docker.DockerClient, name: str) -> None:
    try:
        existing = engine.call_engine(client.containers.get, name)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as err:
        raise engine.engine_error(err, f"look up container {name!r}") from err
    if _is_sandbox(existing):
        raise SandboxError(f"a sandbox named {name!r} already exists", f"remove it with `xsched-ops sandbox rm {name}`")
    raise SandboxError(f"a container named {name!r} already exists and is not a sandbox",
                       "choose another sandbox name")


def _start_container(client: docker.DockerClient, name: str, tag: str, scenario: Scenario,
                     build: InstallBuild) -> Container:
    labels = {
        MANAGED_LABEL: "1",
        SANDBOX_LABEL: "1",
        SCENARIO_LABEL: scenario.name,
        INSTALL_LABEL: build.key,
    }
    environment = [f"{key}={value}" for key, value in scenario.env.items()]
    # An init process reaps the orphans of exec'd commands (xserver started in the background).
    # Engines without docker-init (tini) cannot start such a container: run without it there.
    for use_init in (True, False):
        try:
            container = engine.call_engine(client.containers.create, tag, name=name, hostname=name, labels=labels,
                                           environment=environment, init=use_init, detach=True)
        except docker.errors.APIError as err:
            raise engine.engine_error(err, f"create sandbox container {name!r}") from err
        try:
            engine.call_engine(container.start)
        except docker.errors.APIError as err:
            _force_remove(container)
            if use_init and "init" in str(err.explanation or err).lower():
                continue
            raise engine.engine_error(err, f"start sandbox container {name!r}") from err
        return container
    raise SandboxError(f"the engine could not start sandbox container {name!r}", "check the engine's log")


def _apply(target: ContainerTarget, scenario: Scenario, build: InstallBuild, report: ProgressCallback) -> None:
    name = target.name
    report(f"sandbox {name}: copying the XSched-like {scenario.platform} install to {PREFIX}")
    target.copy_in(build.path(scenario.install_tree), PREFIX)
    for placement in scenario.placements:
        source = build.path(placement.source)
        if not source.exists():
            raise SandboxError(f"scenario {scenario.name!r} places {placement.source}, which the build lacks",
                               "add it to docker/xsched-like/build.sh")
        report(f"sandbox {name}: placing {placement.source} at {placement.destination}")
        target.copy_in(source, placement.destination)
    for path in scenario.removals:
        report(f"sandbox {name}: removing {path}")
        _run_setup(target, scenario, ("rm", "-f", "--", path))
    for argv in scenario.setup:
        report(f"sandbox {name}: running {' '.join(argv)}")
        _run_setup(target, scenario, argv)


def _run_setup(target: ContainerTarget, scenario: Scenario, argv: tuple[str, ...]) -> None:
    result = target.exec(list(argv), env=SETUP_ENV, timeout=120)
    if not result.ok:
        raise SandboxError(
            f"scenario {scenario.name!r}: {' '.join(argv)!r} failed in {target.name} "
            f"(exit {result.exit_code}): {result.stderr.strip()[-300:]}",
            "fix the scenario's set-up in xsched_ops/sandbox/scenarios.py",
        )


def _force_remove(container: Container) -> None:
    try:
        engine.call_engine(container.remove, force=True, v=True)
    except docker.errors.NotFound:
        pass


def remove_sandbox(name: str, docker_host: str | None = None) -> SandboxInfo:
    """Remove sandbox ``name`` (running or not); refuse containers without the sandbox label."""
    client = engine.connect(docker_host)
    try:
        try:
            container = engine.call_engine(client.containers.get, name)
        except docker.errors.NotFound:
            raise SandboxNotFoundError(f"no sandbox named {name!r}",
                                       "list the sandboxes with `xsched-ops sandbox list`") from None
        except docker.errors.APIError as err:
            raise engine.engine_error(err, f"look up container {name!r}") from err
        if not _is_sandbox(container):
            raise SandboxError(
                f"container {name!r} is not a sandbox made by xsched-ops (it lacks the labels {SANDBOX_LABEL}=1 "
                f"and {MANAGED_LABEL}=1); xsched-ops leaves it alone",
                "remove it yourself with `docker rm -f` if that is what you mean",
            )
        info = _info(container)
        try:
            _force_remove(container)
        except docker.errors.APIError as err:
            raise engine.engine_error(err, f"remove sandbox {name!r}") from err
        return info
    finally:
        client.close()


def list_sandboxes(docker_host: str | None = None) -> list[SandboxInfo]:
    client = engine.connect(docker_host)
    try:
        containers = engine.call_engine(client.containers.list, all=True, filters=_SANDBOX_FILTER)
        return sorted((_info(c) for c in containers), key=lambda info: info.name)
    except docker.errors.APIError as err:
        raise engine.engine_error(err, "list sandbox containers") from err
    finally:
        client.close()


def remove_all(docker_host: str | None = None, name_prefix: str = "") -> list[str]:
    """Remove every sandbox whose name starts with ``name_prefix`` (all by default); return their names."""
    client = engine.connect(docker_host)
    try:
        containers = engine.call_engine(client.containers.list, all=True, filters=_SANDBOX_FILTER)
        removed = []
        for container in containers:
            if not container.name.startswith(name_prefix):
                continue
            _force_remove(container)
            removed.append(container.name)
        return sorted(removed)
    finally:
        client.close()
