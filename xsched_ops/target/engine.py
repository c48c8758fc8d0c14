"""The Docker engine: finding it, connecting, and retrying only what is transient.

Address, in order: ``--docker-host``; ``DOCKER_HOST``; the current docker context; the default
socket. Connection resets and 5xx answers are retried a bounded number of times; 404 ("no such
container") and every other 4xx are not: retrying cannot change them.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import docker
import docker.constants
import docker.errors
import requests.exceptions
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from xsched_ops.errors import EngineError, EngineUnavailableError

T = TypeVar("T")

ENGINE_START_HINT = (
    "start one: `sudo dockerd &` (or `sudo systemctl start docker`; `apt-get install docker.io` if it is missing), "
    "or point --docker-host / DOCKER_HOST at a running engine"
)


def is_transient(error: BaseException) -> bool:
    """Connection trouble and server-side (5xx) answers may pass; client errors (4xx) will not."""
    if isinstance(error, docker.errors.APIError):
        return error.is_server_error()
    return isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError)


ENGINE_ATTEMPTS = 4

retry_transient = retry(
    retry=retry_if_exception(is_transient),
    stop=stop_after_attempt(ENGINE_ATTEMPTS),
    wait=wait_exponential(multiplier=0.2, max=2.0),
    reraise=True,
)
"""Decorator for calls to the engine: bounded retries of transient errors only."""


def call_engine(function: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call ``function`` with bounded retries of transient errors."""
    return retry_transient(function)(*args, **kwargs)


def engine_address(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    try:
        from docker.context import ContextAPI

        host = ContextAPI.get_current_context().Host
        if host:
            return host
    except Exception:  # a broken context file falls back to the default socket
        pass
    return "unix:///var/run/docker.sock"


# The engine's answer to GET /version, by client: asked once when connecting (see ``connect``).
_VERSIONS: weakref.WeakKeyDictionary[docker.DockerClient, dict[str, Any]] = weakref.WeakKeyDictionary()
_VERSIONS_LOCK = threading.Lock()


def connect(docker_host: str | None = None, timeout: float = 60) -> docker.DockerClient:
    """A client for an engine that answered, or EngineUnavailableError.

    One request: the engine's unversioned ``GET /version`` shows that it answers and gives the
    API version the client then speaks. (The SDK's ``version="auto"`` asks the same in a request
    of its own, a ping asked again, and ``client.version()`` a third time.) The answer is kept
    for ``engine_version``.
    """
    address = engine_address(docker_host)
    try:
        # A client of the oldest API the SDK speaks asks the version without a version prefix ...
        probe = docker.DockerClient(base_url=address, version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                                    timeout=timeout)
        try:
            info = call_engine(probe.api.version, api_version=False)
        finally:
            probe.close()
        api_version = info.get("ApiVersion") if isinstance(info, dict) else None
        if not isinstance(api_version, str):
            raise docker.errors.DockerException('Invalid response from docker daemon: key "ApiVersion" is missing.')
        # ... and the client that is used speaks the engine's own (no request: the version is given).
        client = docker.DockerClient(base_url=address, version=api_version, timeout=timeout)
    except docker.errors.DockerException as err:
        raise EngineUnavailableError(f"no Docker engine answers at {address} ({_short(err)})", ENGINE_START_HINT) from err
    except requests.exceptions.RequestException as err:
        raise EngineUnavailableError(f"no Docker engine answers at {address} ({_short(err)})", ENGINE_START_HINT) from err
    with _VERSIONS_LOCK:
        _VERSIONS[client] = info
    return client


def engine_version(client: docker.DockerClient) -> dict[str, Any]:
    """The engine's ``GET /version`` answer (``Version``, ``ApiVersion``, ...): the one ``connect``
    got, or asked now (once per client) for a client made elsewhere."""
    with _VERSIONS_LOCK:
        known = _VERSIONS.get(client)
    if known is None:
        known = call_engine(client.version)
        with _VERSIONS_LOCK:
            _VERSIONS[client] = known
    return known


def engine_error(err: docker.errors.APIError, action: str) -> EngineError:
    return EngineError(f"the Docker engine refused to {action}: {_short(err)}", "run with --debug for details")


def _short(err: BaseException) -> str:
    text = str(getattr(err, "explanation", None) or err)
    return " ".join(text.split())[:300]
