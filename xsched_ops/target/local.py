"""This host as a target (bare-metal GPU machines without Docker), through subprocess."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from xsched_ops.errors import TargetPathError
from xsched_ops.target.base import (
    EXEC_MARKER_VARIABLE,
    KILL_GRACE_S,
    DirEntry,
    ExecResult,
    LineCallback,
    Target,
    TargetFacts,
    new_exec_id,
)
from xsched_ops.target.fs import HostFS, TargetFS
from xsched_ops.target.streaming import LineSplitter


def marked_pids(marker: str) -> list[int]:
    """Processes of this host whose initial environment carries ``marker`` (``NAME=VALUE``)."""
    needle = marker.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


class LocalTarget(Target):
    kind = "local"

    @property
    def name(self) -> str:
        return socket.gethostname()

    def facts(self) -> TargetFacts:
        return TargetFacts(kind="local", name=self.name, user=self.user())

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
        if user not in (None, "", self.user()):
            argv = ["runuser", "-u", user, "--", *argv]
        exec_id = new_exec_id()
        environment = dict(os.environ if env is None else env)
        environment[EXEC_MARKER_VARIABLE] = exec_id
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                argv, env=environment, cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except FileNotFoundError as err:
            return ExecResult(argv=tuple(argv), exit_code=127, stdout="", stderr=f"{err}\n",
                              duration_s=time.monotonic() - started)
        splitters = {name: LineSplitter(name, on_line, capture) for name in ("stdout", "stderr")}
        lock = threading.Lock()

        def pump(pipe, splitter: LineSplitter) -> None:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                with lock:  # one callback at a time, as for a container
                    splitter.feed(chunk)
            pipe.close()

        readers = [
            threading.Thread(target=pump, args=(process.stdout, splitters["stdout"]), daemon=True),
            threading.Thread(target=pump, args=(process.stderr, splitters["stderr"]), daemon=True),
        ]
        for reader in readers:
            reader.start()
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._stop(process, exec_id)
        except KeyboardInterrupt:
            self._stop(process, exec_id)
            raise
        for reader in readers:
            reader.join(10)
        for splitter in splitters.values():
            splitter.close()
        return ExecResult(
            argv=tuple(argv), exit_code=process.returncode if process.returncode is not None else -1,
            stdout=splitters["stdout"].text(), stderr=splitters["stderr"].text(),
            timed_out=timed_out, duration_s=time.monotonic() - started,
        )

    def _stop(self, process: subprocess.Popen, exec_id: str) -> None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.kill_marked(exec_id, "TERM")
        try:
            process.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.kill_marked(exec_id, "KILL")
        process.wait()

    def list_marked(self, marker: str) -> list[tuple[int, str]]:
        found = []
        for pid in marked_pids(marker):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            found.append((pid, command))
        return found

    def signal_marked(self, marker: str, signal_name: str) -> int:
        signal_number = 0 if signal_name == "0" else getattr(signal, f"SIG{signal_name}")
        count = 0
        for pid in marked_pids(marker):
            try:
                os.kill(pid, signal_number)
                count += 1
            except ProcessLookupError:
                continue
        return count

    # -- files --------------------------------------------------------------------------------
    def copy_in(self, source: Path, destination: str) -> None:
        source = Path(source)
        target = Path(destination)
        if not source.exists():
            raise TargetPathError(f"{source}: no such file or folder", "check the path")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)

    def copy_out(self, source: str, destination: Path) -> Path:
        origin = Path(source)
        if not origin.exists():
            raise TargetPathError(f"{source}: no such file or folder on this host", "check the path")
        destination = Path(destination)
        destination.mkdir(parents=True, exist_ok=True)
        copied = destination / origin.name
        if origin.resolve() == copied.resolve():
            return copied
        if origin.is_dir():
            shutil.copytree(origin, copied, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(origin, copied)
        return copied

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        try:
            with open(path, "rb") as handle:
                return handle.read() if max_bytes is None else handle.read(max_bytes)
        except OSError as err:
            raise TargetPathError(f"{path}: {err.strerror}", "check the path") from None

    def list_dir(self, path: str) -> list[DirEntry]:
        try:
            names = sorted(os.listdir(path))
        except OSError as err:
            raise TargetPathError(f"{path}: cannot list ({err.strerror})", "check the path") from None
        entries = []
        for name in names:
            full = os.path.join(path, name)
            info = os.lstat(full)
            if os.path.islink(full):
                entries.append(DirEntry(name, "link", info.st_size, os.readlink(full)))
            elif os.path.isdir(full):
                entries.append(DirEntry(name, "dir", info.st_size))
            elif os.path.isfile(full):
                entries.append(DirEntry(name, "file", info.st_size))
            else:
                entries.append(DirEntry(name, "other", info.st_size))
        return entries

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def fs(self) -> TargetFS:
        return HostFS()

    def environment(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != EXEC_MARKER_VARIABLE}

    def user(self) -> str:
        return getpass.getuser()
