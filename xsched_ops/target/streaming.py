"""Turning byte chunks from two streams into lines, while a command runs."""

from __future__ import annotations

from xsched_ops.target.base import LineCallback


class LineSplitter:
    """Collects chunks of one stream, emits complete lines, keeps the whole text when asked."""

    def __init__(self, stream: str, on_line: LineCallback | None, capture: bool) -> None:
        self.stream = stream
        self.on_line = on_line
        self.capture = capture
        self._pending = b""
        self._lines: list[str] = []

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        data = self._pending + chunk
        *complete, self._pending = data.split(b"\n")
        for raw in complete:
            self._emit(raw)

    def close(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").removesuffix("\r")
        if self.capture:
            self._lines.append(line)
        if self.on_line is not None:
            self.on_line(self.stream, line)

    def text(self) -> str:
        return "\n".join(self._lines) + ("\n" if self._lines else "")
