"""A Docker container as a target, through the Docker SDK.

* Commands run through the low-level exec API (``exec_create`` / ``exec_start(stream=True,
  demux=True)`` / ``exec_inspect``) so that output streams *and* the exit code comes back.
* An explicit environment is made complete and verbatim with ``env -i NAME=VALUE ... argv``:
  the exec API's own ``Environment`` only adds to the container's configured ``Env`` and
  cannot remove a stale ``LD_LIBRARY_PATH`` from it. Values travel as argv entries of a JSON
  array, so nothing is expanded by a shell.
* A stopped ``docker exec`` client does not stop the process inside the container; on timeout
  or Ctrl-C every process carrying the command's marker variable is killed in the container.
* A container stopped, killed or removed under a command, or an engine that stopped answering
  (given ``ENGINE_RETURN_S`` to come back from a restart), is one line (exit 10, 11 or 12); once
  the container's main process is gone its files (read through ``/proc/PID/root``) raise that
  error instead of reading as missing.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shlex
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from xsched_ops.errors import (
    ContainerNotFoundError,
    ContainerNotRunningError,
    TargetPathError,
    XSchedOpsError,
)
from xsched_ops.target import engine
from xsched_ops.target.archive import build_archive, safe_extract, spool_chunks
from xsched_ops.target.base import (
    EXEC_MARKER_VARIABLE,
    DirEntry,
    ExecResult,
    LineCallback,
    Target,
    TargetFacts,
    exec_marker,
    new_exec_id,
)
from xsched_ops.target.fs import ProcessRootFS, RootedFS, TargetFS
from xsched_ops.target.marked import MARKED_SCRIPT
from xsched_ops.target.streaming import LineSplitter

# Seconds an engine that stopped answering gets to come back (a restart) before the target counts as lost.
ENGINE_RETURN_S = 5.0

# Label carried by every container xsched-ops creates, so that none is left unfindable.
MANAGED_LABEL = "org.xsched-ops.managed"

def _parse_env(entries: list[str] | None) -> dict[str, str]:
    environment: dict[str, str] = {}
    for entry in entries or []:
        name, _, value = entry.partition("=")
        environment[name] = value
    return environment


class ContainerTarget(Target):
    kind = "container"

    def __init__(self, client: docker.DockerClient, container: Container, address: str) -> None:
        self._client = client
        self._container = container
        self._address = address
        self._engine_gone = False

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, name_or_id: str, docker_host: str | None = None) -> ContainerTarget:
        client = engine.connect(docker_host)
        address = engine.engine_address(docker_host)
        try:
            container = engine.call_engine(client.containers.get, name_or_id)
        except docker.errors.NotFound:
            running = sorted(c.name for c in engine.call_engine(client.containers.list))
            listing = ", ".join(running) if running else "none"
            client.close()
            raise ContainerNotFoundError(
                f"no container named {name_or_id!r} on the engine at {address}",
                f"running containers: {listing}; check the name with `docker ps -a`",
            ) from None
        except docker.errors.APIError as err:
            client.close()
            raise engine.engine_error(err, f"look up container {name_or_id!r}") from err
        status = container.status
        if status != "running":
            client.close()
            raise ContainerNotRunningError(
                f"container {container.name!r} is {status}, not running",
                f"start it with `docker start {container.name}`",
            )
        return cls(client, container, address)

    def close(self) -> None:
        self._client.close()

    def is_running(self) -> bool:
        """Whether the container still runs (False once it was stopped, killed or removed).

        An engine that stopped answering is given ``ENGINE_RETURN_S`` to come back (a restart);
        if it does not, the container cannot run commands: False.
        """
        try:
            self._reload_awaiting_engine()
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError:
            return True  # the engine did not say: assume nothing changed
        except requests.exceptions.RequestException:
            return False
        return self._container.status == "running"

    def why_not_running(self) -> str | None:
        if self.is_running():
            return None
        return self._stopped_error().message

    def _reload_awaiting_engine(self) -> None:
        try:
            self._container.reload()
        except docker.errors.APIError:
            raise
        except requests.exceptions.RequestException:
            # Waited for once: an engine that did not come back is not waited for again.
            if self._engine_gone or not engine.wait_for_engine(self._client, ENGINE_RETURN_S):
                self._engine_gone = True
                raise
            self._container.reload()

    def _stopped_error(self) -> XSchedOpsError:
        try:
            self._reload_awaiting_engine()
        except docker.errors.NotFound:
            return ContainerNotFoundError(f"container {self.name!r} was removed while xsched-ops worked in it",
                                          "what could be kept is kept; recreate the container to run again")
        except docker.errors.APIError:
            pass
        except requests.exceptions.RequestException as err:
            return engine.engine_lost(self._address, err)
        return ContainerNotRunningError(
            f"container {self.name!r} stopped while xsched-ops worked in it (now {self._container.status})",
            f"start it with `docker start {self.name}` and run again")

    def _raise_if_removed(self) -> None:
        """A 404 of a file request may mean that the container itself is gone, and its files with it."""
        try:
            with self._engine_lost_is_an_error():
                self._container.reload()
            gone = self._container.status in ("removing", "dead")  # `docker rm -f` still at work
        except docker.errors.NotFound:
            gone = True
        except docker.errors.APIError:
            gone = False
        if gone:
            raise ContainerNotFoundError(
                f"container {self.name!r} was removed, and its files with it",
                "what was copied out before is kept; recreate the container to run again")

    @contextlib.contextmanager
    def _gone_is_an_error(self) -> Iterator[None]:
        """An engine refusal because the container stopped (409) or vanished (404) becomes one line."""
        try:
            yield
        except docker.errors.NotFound as err:
            raise self._stopped_error() from err
        except docker.errors.APIError as err:
            if err.status_code == 409 or not self.is_running():
                raise self._stopped_error() from err
            raise
        except requests.exceptions.RequestException as err:
            # The engine stopped answering (after the bounded retries): a restart stops the
            # container, a stopped engine leaves nothing to ask.
            raise self._stopped_error() from err

    @contextlib.contextmanager
    def _engine_lost_is_an_error(self) -> Iterator[None]:
        """A request that found no engine (after the bounded retries) becomes one line (exit 10)."""
        try:
            yield
        except docker.errors.APIError:
            raise  # an answer (APIError is also a requests HTTPError), not a lost engine
        except requests.exceptions.RequestException as err:
            raise engine.engine_lost(self._address, err) from err

    @property
    def container(self) -> Container:
        return self._container

    @property
    def name(self) -> str:
        return self._container.name

    def facts(self) -> TargetFacts:
        version = engine.engine_version(self._client)  # asked once, when connecting
        attrs = self._container.attrs
        return TargetFacts(
            kind="container",
            name=self.name,
            id=self._container.id[:12],
            image=attrs.get("Config", {}).get("Image", ""),
            engine=self._address,
            engine_api_version=str(version.get("ApiVersion", "")),
            user=self.user(),
            extra={"engine_version": str(version.get("Version", ""))},
        )

    # -- processes ----------------------------------------------------------------------------
    def exec(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        on_line: LineCallback | None = None,
        capture: bool = True,
        user: str | None = None,
    ) -> ExecResult:
        argv = list(argv)
        if not argv:
            raise ValueError("empty command")
        exec_id = new_exec_id()
        marker = f"{EXEC_MARKER_VARIABLE}={exec_id}"
        if env is None:
            command = argv
            extra_environment = [marker]
        else:
            assignments = [f"{name}={value}" for name, value in env.items() if name != EXEC_MARKER_VARIABLE]
            command = ["env", "-i", *assignments, marker, *argv]
            extra_environment = []
        api = self._client.api
        started = time.monotonic()
        with self._gone_is_an_error():
            created = engine.call_engine(
                api.exec_create,
                self._container.id,
                cmd=command,
                environment=extra_environment or None,
                workdir=cwd,
                user=user or "",
                stdout=True,
                stderr=True,
            )
            exec_api_id = created["Id"]
            stream = api.exec_start(exec_api_id, stream=True, demux=True)
        splitters = {
            "stdout": LineSplitter("stdout", on_line, capture),
            "stderr": LineSplitter("stderr", on_line, capture),
        }
        failure: list[BaseException] = []

        def pump() -> None:
            try:
                for out_chunk, err_chunk in stream:
                    if out_chunk:
                        splitters["stdout"].feed(out_chunk)
                    if err_chunk:
                        splitters["stderr"].feed(err_chunk)
            except BaseException as err:  # handed to the caller's thread
                failure.append(err)

        reader = threading.Thread(target=pump, name=f"exec-{exec_id}", daemon=True)
        reader.start()
        timed_out = False
        try:
            deadline = None if timeout is None else started + timeout
            while reader.is_alive():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    timed_out = True
                    self._stop_marked(exec_id)
                    reader.join(10)
                    break
                reader.join(0.2 if remaining is None else min(0.2, remaining))
        except KeyboardInterrupt:
            self._stop_marked(exec_id)
            raise
        for splitter in splitters.values():
            splitter.close()
        if failure and not timed_out:
            if not self.is_running():
                raise self._stopped_error() from failure[0]
            if engine.is_connection_lost(failure[0]):
                raise engine.engine_lost(self._address, failure[0]) from failure[0]
            raise failure[0]
        with self._gone_is_an_error():
            exit_code = self._wait_exit_code(exec_api_id)
        return ExecResult(
            argv=tuple(argv),
            exit_code=exit_code,
            stdout=splitters["stdout"].text(),
            stderr=splitters["stderr"].text(),
            timed_out=timed_out,
            duration_s=time.monotonic() - started,
        )

    def _wait_exit_code(self, exec_api_id: str) -> int:
        # The stream can end a moment before the engine records the exit code.
        for _ in range(50):
            info = engine.call_engine(self._client.api.exec_inspect, exec_api_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            time.sleep(0.1)
        return -1

    def _stop_marked(self, exec_id: str) -> None:
        self.stop_marked(exec_marker(exec_id))

    def _run_marked_script(self, action: str, marker: str) -> list[str]:
        with self._gone_is_an_error():
            result = engine.call_engine(
                self._container.exec_run, ["sh", "-c", MARKED_SCRIPT, "xsched-ops-marked", action, marker],
                user="root",
            )
        return result.output.decode(errors="replace").splitlines()

    def list_marked(self, marker: str) -> list[tuple[int, str]]:
        found = []
        for line in self._run_marked_script("list", marker):
            pid, _, command = line.partition("\t")
            if pid.strip().isdigit():
                found.append((int(pid), command.strip()))
        return found

    def signal_marked(self, marker: str, signal_name: str) -> int:
        return sum(1 for line in self._run_marked_script(signal_name, marker) if line.strip().isdigit())

    # -- files --------------------------------------------------------------------------------
    def _check_run(self, argv: list[str], what: str) -> ExecResult:
        result = self.exec(argv, timeout=120)
        if result.exit_code != 0:
            raise TargetPathError(
                f"{what} in container {self.name!r} failed: {result.stderr.strip() or result.stdout.strip()}",
                "check the path and the container's permissions",
            )
        return result

    def copy_in(self, source: Path, destination: str) -> None:
        destination = posixpath.normpath(destination)
        parent = posixpath.dirname(destination) or "/"
        self._check_run(["mkdir", "-p", parent], f"creating {parent}")
        with build_archive(Path(source), posixpath.basename(destination)) as archive:
            try:
                engine.call_engine(self._container.put_archive, parent, archive)
            except docker.errors.APIError as err:
                raise TargetPathError(
                    f"copying {source} to {self.name}:{destination} failed: {engine._short(err)}",
                    "check that the destination folder is writable",
                ) from err

    def copy_out(self, source: str, destination: Path) -> Path:
        try:
            with self._engine_lost_is_an_error():
                chunks, _stat = engine.call_engine(self._container.get_archive, source)
        except docker.errors.NotFound:
            self._raise_if_removed()
            raise TargetPathError(f"{self.name}:{source}: no such file or folder in the container",
                                  "check the path with `docker exec NAME ls`") from None
        with self._engine_lost_is_an_error(), spool_chunks(chunks) as archive:
            safe_extract(archive, Path(destination), f"{self.name}:{source}")
        return Path(destination) / posixpath.basename(posixpath.normpath(source))

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        import tarfile

        try:
            with self._engine_lost_is_an_error():
                chunks, _stat = engine.call_engine(self._container.get_archive, path)
        except docker.errors.NotFound:
            self._raise_if_removed()
            raise TargetPathError(f"{self.name}:{path}: no such file in the container", "check the path") from None
        with self._engine_lost_is_an_error(), spool_chunks(chunks) as spool, \
                tarfile.open(fileobj=spool, mode="r:") as archive:
            for member in archive:
                if member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None
                    return handle.read() if max_bytes is None else handle.read(max_bytes)
        raise TargetPathError(f"{self.name}:{path}: not a regular file", "check the path")

    def list_dir(self, path: str) -> list[DirEntry]:
        result = self.exec(["find", path, "-mindepth", "1", "-maxdepth", "1", "-printf", r"%f\t%y\t%s\t%l\n"], timeout=60)
        if result.exit_code != 0:
            raise TargetPathError(f"{self.name}:{path}: cannot list ({result.stderr.strip()})", "check the path")
        kinds = {"f": "file", "d": "dir", "l": "link"}
        entries = []
        for line in result.stdout.splitlines():
            name, kind, size, link = (line.split("\t") + ["", "", ""])[:4]
            entries.append(DirEntry(name=name, kind=kinds.get(kind, "other"), size=int(size or 0), link_target=link or None))
        return sorted(entries, key=lambda e: e.name)

    def exists(self, path: str) -> bool:
        return self.exec(["test", "-e", path], timeout=60).exit_code == 0

    def fs(self) -> TargetFS:
        # The attributes fetched when the target was opened (or last reloaded) name the
        # container's main process; they are fetched again only when that process's root is
        # not the container's any more (it restarted since), or cannot be reached.
        rooted = self._rooted_fs()
        if rooted is None:
            self._container.reload()
            rooted = self._rooted_fs()
        if rooted is not None:
            return rooted
        from xsched_ops.errors import EngineError

        raise EngineError(
            f"the files of container {self.name!r} cannot be read from this host (remote engine or not root)",
            "run xsched-ops on the Docker host as root, or inside the container with --local",
        )

    def _rooted_fs(self) -> RootedFS | None:
        pid = self._container.attrs.get("State", {}).get("Pid", 0)
        root = f"/proc/{pid}/root"
        if pid and os.access(root, os.R_OK | os.X_OK) and self._is_same_host(root):
            return ProcessRootFS(pid, self._stopped_error)
        return None

    def _is_same_host(self, root: str) -> bool:
        hostname = self._container.attrs.get("Config", {}).get("Hostname", "")
        try:
            with open(os.path.join(root, "etc", "hostname")) as handle:
                return handle.read().strip() == hostname
        except OSError:
            return False

    # -- configuration ------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        return _parse_env(self._container.attrs.get("Config", {}).get("Env"))

    def user(self) -> str:
        return self._container.attrs.get("Config", {}).get("User") or "root"

    def describe_command(self, argv: Sequence[str]) -> str:
        return f"docker exec {self.name} {shlex.join(argv)}"
