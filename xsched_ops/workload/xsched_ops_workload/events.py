"""JSON-lines event files, one line per ``write`` and flushed, optionally echoed to stdout."""

from __future__ import annotations

import json
import os
import threading

_STDOUT_LOCK = threading.Lock()
ECHOED_EVENTS = frozenset({"start", "end", "progress", "warmup", "t0", "launcher", "register", "device_ready"})


def _encode(event: dict) -> bytes:
    return (json.dumps(event, separators=(",", ":"), allow_nan=False, default=str) + "\n").encode()


def echo(event: dict) -> None:
    """Print one event line to stdout with a single write (atomic on pipes below PIPE_BUF)."""
    data = _encode(event)
    with _STDOUT_LOCK:
        try:
            os.write(1, data)
        except OSError:
            pass  # the host stopped reading; the file copy is what counts


class EventLog:
    """Appends events to one file; ``echo_all`` also prints every event, else only ECHOED_EVENTS."""

    def __init__(self, path: str, echo_all: bool = False) -> None:
        self.path = path
        self.echo_all = echo_all
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, event: dict) -> None:
        data = _encode(event)
        with self._lock:
            if self._fd is None:
                return
            os.write(self._fd, data)
        if self.echo_all or event.get("event") in ECHOED_EVENTS:
            echo(event)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
