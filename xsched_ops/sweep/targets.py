"""Where a sweep's cells run: its targets, each a container on some Docker engine (or this host).

``--target CONTAINER[@ENGINE]`` names one: ENGINE is an engine address (``unix:///PATH``,
``tcp://HOST:PORT``, ``ssh://USER@HOST``, ...) or the name of a docker context; without it, the
engine of ``--docker-host`` / ``DOCKER_HOST`` / the current context. A container's name cannot hold
``@``, so the first ``@`` splits (``gpu1@ssh://me@host`` is container ``gpu1`` on ``ssh://me@host``).

A target that stops answering during a sweep (its engine stopped, its container removed or
stopped) is *lost*: its cell runs again on another target, and the loss is kept in the manifest.
A target that cannot be opened when the sweep starts is reported the same way and not used; with
one target, its error is the command's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xsched_ops.errors import UsageError, XSchedOpsError
from xsched_ops.sweep.manifest import Manifest
from xsched_ops.target.base import Target

TARGET_SYNTAX = "CONTAINER[@ENGINE] (ENGINE: unix:///PATH, tcp://HOST:PORT, ssh://USER@HOST, or a docker context)"


@dataclass(frozen=True)
class TargetSpec:
    """One ``--target`` as given: a container and, optionally, its engine (address or docker context)."""

    container: str
    engine: str | None = None

    @property
    def label(self) -> str:
        return self.container if self.engine is None else f"{self.container}@{self.engine}"


def parse_target(text: str) -> TargetSpec:
    """``CONTAINER[@ENGINE]``; one line naming the bad one otherwise (usage error)."""
    container, separator, engine_part = text.strip().partition("@")
    if not container or (separator and not engine_part):
        raise UsageError(f"--target {text!r}: expected {TARGET_SYNTAX}",
                         "e.g. --target xo-1 --target xo-2@unix:///run/docker2.sock")
    if "/" in container or ":" in container:
        raise UsageError(f"--target {text!r}: {container!r} is not a container name",
                         "write the container first, then @ and its engine: NAME@unix:///run/docker2.sock")
    return TargetSpec(container, engine_part or None)


def parse_targets(texts: list[str]) -> list[TargetSpec]:
    specs = [parse_target(text) for text in texts]
    labels = [spec.label for spec in specs]
    for label in labels:
        if labels.count(label) > 1:
            raise UsageError(f"--target {label} given twice", "a container runs one cell at a time: give it once")
    return specs


def engine_address(spec: TargetSpec, default_host: str | None) -> str | None:
    """The engine address of ``spec``: its own (a URL or a docker context's host), else the default."""
    if spec.engine is None:
        return default_host
    if "://" in spec.engine:
        return spec.engine
    from docker.context import ContextAPI

    try:
        context = ContextAPI.get_context(spec.engine)
    except Exception as err:  # a damaged context store: one line, not a traceback
        raise UsageError(f"--target {spec.label}: the docker context {spec.engine!r} cannot be read ({err})",
                         "check it with `docker context inspect`") from None
    if context is None or not context.Host:
        raise UsageError(f"--target {spec.label}: no docker context named {spec.engine!r}",
                         "list them with `docker context ls`, or give the engine's address (unix://, tcp://, ssh://)")
    return context.Host


@dataclass
class SweepTarget:
    """An opened target (or why it could not be opened) and what every cell record keeps of it."""

    label: str
    target: Target | None
    info: dict = field(default_factory=dict)  # engine, container, container_id, image, image_id
    problem: str | None = None  # why it could not be opened
    error: XSchedOpsError | None = None  # the error that said so


def target_info(label: str, target: Target) -> dict:
    """Who a cell ran on: engine address, container (name and id), image (name and id: its digest)."""
    facts = target.facts()
    if facts.kind != "container":
        import socket

        return {"label": label, "kind": facts.kind, "host": socket.gethostname(), "engine": None, "container": None,
                "container_id": None, "image": None, "image_id": None}
    container = getattr(target, "container", None)
    image_id = container.attrs.get("Image") if container is not None else None
    return {"label": label, "kind": facts.kind, "engine": facts.engine, "container": facts.name,
            "container_id": facts.id, "image": facts.image or None, "image_id": image_id}


def open_targets(specs: list[TargetSpec], default_host: str | None) -> list[SweepTarget]:
    """Open every target. With several, one that cannot be opened is kept with its problem (not used);
    with one, its error is raised. Bad input (a malformed address, an unknown context) always raises."""
    from xsched_ops.target.container import ContainerTarget

    opened: list[SweepTarget] = []
    try:
        for spec in specs:
            address = engine_address(spec, default_host)
            try:
                target = ContainerTarget.open(spec.container, address)
            except UsageError:
                raise
            except XSchedOpsError as err:
                if len(specs) == 1:
                    raise
                opened.append(SweepTarget(spec.label, None, {"label": spec.label, "engine": address,
                                                             "container": spec.container}, err.one_line(), err))
                continue
            opened.append(SweepTarget(spec.label, target, target_info(spec.label, target)))
    except BaseException:
        close_targets(opened)
        raise
    _refuse_same_container(opened)
    return opened


def open_local() -> list[SweepTarget]:
    from xsched_ops.target.local import LocalTarget

    target = LocalTarget()
    return [SweepTarget("local", target, target_info("local", target))]


def record_targets(manifest: Manifest, opened: list[SweepTarget]) -> dict[str, Target]:
    """The manifest keeps this command's targets (state ok, or unreachable and why) and an event for each
    one not used; returns the usable targets by label. None usable: the first one's error, naming all."""
    import time

    manifest.targets = {}
    for item in opened:
        state = {"state": "ok", "reason": None} if item.target is not None else {"state": "unreachable",
                                                                                 "reason": item.problem}
        manifest.targets[item.label] = {**item.info, **state}
        if item.target is None:
            manifest.target_events.append({"target": item.label, "gpu": None, "cell": None, "run_id": None,
                                           "reason": item.problem, "wall": time.time()})
    usable = {item.label: item.target for item in opened if item.target is not None}
    if not usable:
        first = next(item for item in opened if item.error is not None)
        assert first.error is not None
        raise type(first.error)("no target of the sweep answers: " + "; ".join(
            f"{item.label}: {item.problem}" for item in opened), "start an engine or container of the sweep, or "
            "give other --target")
    return usable


def _refuse_same_container(opened: list[SweepTarget]) -> None:
    seen: dict[tuple, str] = {}
    for item in opened:
        if item.target is None:
            continue
        key = (item.info.get("engine"), item.info.get("container_id"))
        if key in seen:
            close_targets(opened)
            raise UsageError(f"--target {seen[key]} and --target {item.label} are the same container",
                             "a container runs one cell at a time: give it once")
        seen[key] = item.label


def close_targets(opened: list[SweepTarget]) -> None:
    for item in opened:
        if item.target is not None:
            try:
                item.target.close()
            except Exception:  # closing a client of an engine that is gone may fail; nothing to keep
                pass
