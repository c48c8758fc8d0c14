"""Choosing the target from the command line's ``--container NAME`` / ``--local``."""

from __future__ import annotations

from xsched_ops.errors import UsageError
from xsched_ops.target.base import Target


def open_target(container: str | None, local: bool, docker_host: str | None = None) -> Target:
    if container and local:
        raise UsageError("--container and --local both given", "choose one target")
    if local:
        from xsched_ops.target.local import LocalTarget

        return LocalTarget()
    if not container:
        raise UsageError("no target given", "name a container with --container NAME, or use --local for this host")
    from xsched_ops.target.container import ContainerTarget

    return ContainerTarget.open(container, docker_host)
