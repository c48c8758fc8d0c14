"""The Docker engine: finding it, connecting, and retrying only what is transient.

Address, in order: ``--docker-host``; ``DOCKER_HOST``; the current docker context; the default
socket. Connection resets and 5xx answers are retried a bounded number of times; 404 ("no such
container") and every other 4xx are not: retrying cannot change them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import docker
import docker.constants
import docker.errors
import docker.utils
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
    # A pipe that broke under the ssh:// transport (the SDK's sshconn raises these from the ssh
    # process's pipes, e.g. when closing an exec's connection) is connection trouble too.
    return isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError
                      | BrokenPipeError | ConnectionResetError)


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


DEFAULT_ADDRESS = "unix:///var/run/docker.sock"
SSH_INSTALL_HINT = ("install the extra `ssh` (`pip install 'xsched-ops[ssh]'`, or `pip install paramiko` in "
                    "xsched-ops' environment)")


def engine_address(explicit: str | None = None) -> str:
    return engine_address_and_source(explicit)[0]


def engine_address_and_source(explicit: str | None = None) -> tuple[str, str]:
    """The engine's address and where it was given (for messages about it)."""
    if explicit:
        return explicit, "--docker-host (or XSCHED_OPS_DOCKER_HOST)"
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"], "DOCKER_HOST"
    try:
        from docker.context import ContextAPI

        context = ContextAPI.get_current_context()
        if context.Host:
            return context.Host, f"the docker context {context.Name!r}"
    except Exception:  # a broken context file falls back to the default socket
        pass
    return DEFAULT_ADDRESS, "the default"


def check_address(address: str, source: str) -> dict[str, Any]:
    """The client options for ``address``, or one line: malformed (exit 2), or an ssh:// host without SSH (exit 10).

    Checked before the SDK sees it: the SDK takes ``ssh://`` without a host for 127.0.0.1 and
    ``unix://`` without a path for the default socket, and says "Invalid bind address" otherwise.
    """
    import urllib.parse

    from xsched_ops.errors import UsageError

    def malformed(why: str) -> UsageError:
        return UsageError(f"the Docker engine address {address!r} (from {source}) is malformed: {why}",
                          "give one like unix:///var/run/docker.sock, tcp://HOST:2375 or ssh://USER@HOST")

    scheme, separator, rest = address.partition("://")
    if not separator:
        raise malformed("it has no scheme (unix://, tcp://, ssh://, ...)")
    if scheme not in ("unix", "tcp", "http", "https", "ssh"):
        raise malformed(f"the scheme {scheme + '://'!r} is not one of unix://, tcp://, http://, https://, ssh://")
    if scheme == "unix":
        if not rest.startswith("/"):
            raise malformed("unix:// takes the socket's absolute path (unix:///PATH)")
        return {}
    try:
        parsed = urllib.parse.urlsplit(address)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as err:
        raise malformed(str(err)) from None
    if not parsed.hostname:
        raise malformed(f"{scheme}:// names no host")
    if scheme != "ssh":
        try:
            docker.utils.parse_host(address, False)
        except (docker.errors.DockerException, ValueError) as err:
            raise malformed(_short(err)) from None
        return {}
    import shutil

    try:
        import paramiko  # noqa: F401 - the SDK's SSH transport needs it, even to run the ssh client
    except ImportError:
        raise EngineUnavailableError(f"cannot reach the Docker engine at {address}: ssh:// needs paramiko, "
                                     "which is not installed", SSH_INSTALL_HINT) from None
    # The OpenSSH client where there is one, as the docker CLI does (~/.ssh/config, agents, known
    # hosts); paramiko's own connection otherwise.
    return {"use_ssh_client": True} if shutil.which("ssh") else {}


@contextlib.contextmanager
def _ssh_client_stderr(options: dict[str, Any], said: list[str]) -> Iterator[None]:
    """While connecting through the ssh client, what it writes to stderr is kept for the one line.

    The SDK starts ``ssh`` with this process's stderr: a refused connection would print one line
    per attempt above ours.
    """
    if not options.get("use_ssh_client"):
        yield
        return
    import sys
    import tempfile

    sys.stderr.flush()
    with tempfile.TemporaryFile() as spool:
        saved = os.dup(2)
        os.dup2(spool.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            spool.seek(0)
            said.extend(line.strip() for line in spool.read().decode(errors="replace").splitlines() if line.strip())


def _unreachable_hint(address: str) -> str:
    if address == DEFAULT_ADDRESS:
        return ENGINE_START_HINT
    if address.startswith("unix://"):
        return (f"check the socket's path, start the engine that listens there (`dockerd -H {address}`), or give "
                "another --docker-host (unset it for the default socket)")
    if address.startswith("ssh://"):
        import urllib.parse

        parsed = urllib.parse.urlsplit(address)
        port = f"-p {parsed.port} " if parsed.port else ""
        user = f"{parsed.username}@" if parsed.username else ""
        return f"check that `ssh {port}{user}{parsed.hostname} docker version` works from this host"
    return "check that an engine listens there (dockerd -H ...) and that this host can reach it"


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
    address, source = engine_address_and_source(docker_host)
    options = check_address(address, source)
    if address.startswith("unix://") and not os.path.exists(address.removeprefix("unix://")):
        raise EngineUnavailableError(f"no Docker engine answers at {address}: no socket at "
                                     f"{address.removeprefix('unix://')}", _unreachable_hint(address))
    ssh_said: list[str] = []
    try:
        # A client of the oldest API the SDK speaks asks the version without a version prefix ...
        probe = docker.DockerClient(base_url=address, version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                                    timeout=timeout, **options)
        try:
            with _ssh_client_stderr(options, ssh_said):
                info = call_engine(probe.api.version, api_version=False)
        finally:
            probe.close()
        api_version = info.get("ApiVersion") if isinstance(info, dict) else None
        if not isinstance(api_version, str):
            raise docker.errors.DockerException('Invalid response from docker daemon: key "ApiVersion" is missing.')
        # ... and the client that is used speaks the engine's own (no request: the version is given).
        client = docker.DockerClient(base_url=address, version=api_version, timeout=timeout, **options)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as err:
        said = f"{ssh_said[-1]}; " if ssh_said else ""
        raise EngineUnavailableError(f"no Docker engine answers at {address} ({said}{_short(err)})",
                                     _unreachable_hint(address)) from err
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


def is_connection_lost(error: BaseException) -> bool:
    """The engine stopped answering (refused, reset, timed out), as opposed to answering with an error."""
    # docker's APIError is a requests HTTPError too: an answer, not a lost engine.
    return isinstance(error, requests.exceptions.RequestException) and not isinstance(error, docker.errors.APIError)


def engine_lost(address: str, err: BaseException) -> EngineUnavailableError:
    """A request that found no engine any more (stopped or restarting during the command)."""
    return EngineUnavailableError(
        f"the Docker engine at {address} stopped answering during the command ({_short(err)})",
        f"check that it runs (`docker --host {address} info`), then run the command again")


def wait_for_engine(client: docker.DockerClient, seconds: float) -> bool:
    """Whether the engine answers a ping within ``seconds`` (an engine being restarted comes back)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if client.api.ping():
                return True
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def engine_error(err: docker.errors.APIError, action: str) -> EngineError:
    return EngineError(f"the Docker engine refused to {action}: {_short(err)}", "run with --debug for details")


def _short(err: BaseException) -> str:
    text = str(getattr(err, "explanation", None) or err)
    return " ".join(text.split())[:300]
