"""The scheduler's own evidence of a trial: the xserver's log and its ``GET /xqueues`` answer.

Pure functions over text (XSCHED-FACTS.md sections 2-3): which client processes connected (and
closed), the XQueues each created and the priority each got. The orchestrator records the result
in ``trial.json`` (``scheduler``); validity judges an xsched trial by it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from xsched_ops.results.models import SchedulerProcess, SchedulerView, SchedulerXQueue

# [XSCHED INFO @ T 1119 @ 01:30:07.782983] text  (the IPC library writes "[IPC INFO @ T2019 @ ...]")
_LOG_LINE = re.compile(r"\[(?P<source>XSCHED|IPC) (?P<level>[A-Z]+) @ T ?\d+ @ [\d:.]+\] (?P<text>.*)$")
_CONNECTED = re.compile(r"client process (?P<pid>\d+) connected(?:, cmdline: (?P<cmdline>.*))?$")
_CLOSED = re.compile(r"client process (?P<pid>\d+) closed")
_CREATED = re.compile(r"XQueue \((?P<handle>[^)]+)\) from process (?P<pid>\d+) created")
_DESTROYED = re.compile(r"XQueue \((?P<handle>[^)]+)\) from process (?P<pid>\d+) destroyed")
_PRIORITY = re.compile(r"set priority (?P<priority>-?\d+) for XQueue (?P<handle>\S+)")
_POLICY = re.compile(r"scheduler created with policy (?P<policy>\S+)")


def log_messages(lines: Iterable[str]) -> list[tuple[str, str, str]]:
    """``(source, level, text)`` of every XSched-format line (other lines, e.g. ``stderr:`` prefixes, skipped)."""
    messages = []
    for line in lines:
        match = _LOG_LINE.search(line)
        if match:
            messages.append((match["source"], match["level"], match["text"].strip()))
    return messages


class _Builder:
    def __init__(self) -> None:
        self.processes: dict[int, SchedulerProcess] = {}
        self.by_handle: dict[str, SchedulerXQueue] = {}
        self.policy: str | None = None

    def process(self, pid: int) -> SchedulerProcess:
        if pid not in self.processes:
            self.processes[pid] = SchedulerProcess(pid=pid)
        return self.processes[pid]

    def xqueue(self, pid: int, handle: str) -> SchedulerXQueue:
        if handle not in self.by_handle:
            queue = SchedulerXQueue(handle=handle)
            self.by_handle[handle] = queue
            self.process(pid).xqueues.append(queue)
        return self.by_handle[handle]

    def read_log(self, lines: Iterable[str]) -> None:
        for source, _level, text in log_messages(lines):
            if source != "XSCHED":
                continue
            if match := _POLICY.search(text):
                self.policy = match["policy"]
            elif match := _CONNECTED.search(text):
                process = self.process(int(match["pid"]))
                process.cmdline = match["cmdline"] or process.cmdline
                process.closed = False
            elif match := _CLOSED.search(text):
                self.process(int(match["pid"])).closed = True
            elif match := _CREATED.search(text):
                self.xqueue(int(match["pid"]), match["handle"])
            elif match := _PRIORITY.search(text):
                queue = self.by_handle.get(match["handle"])
                if queue is not None:
                    queue.priority = int(match["priority"])
            # Destroyed XQueues stay listed: the evidence is that they existed during the trial.

    def read_xqueues(self, document: dict) -> None:
        for entry in document.get("processes") or []:
            if isinstance(entry, dict) and isinstance(entry.get("pid"), int):
                process = self.process(entry["pid"])
                process.cmdline = process.cmdline or str(entry.get("cmdline") or "")
        for entry in document.get("xqueues") or []:
            if not (isinstance(entry, dict) and isinstance(entry.get("pid"), int)):
                continue
            queue = self.xqueue(entry["pid"], str(entry.get("handle")))
            for key in ("priority", "level", "threshold", "batch_size"):
                value = entry.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    setattr(queue, key, value)


def parse_xqueues(text: str) -> dict | None:
    """The JSON document of ``GET /xqueues``, or None when the text is not one."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def scheduler_view(log_lines: Iterable[str], xqueues_snapshots: Iterable[dict] = (),
                   xserver_end: str | None = None, xserver_died: bool = False) -> SchedulerView:
    """The xserver's view of a trial from its log and any ``GET /xqueues`` answers taken meanwhile."""
    builder = _Builder()
    builder.read_log(log_lines)
    snapshots = list(xqueues_snapshots)
    for document in snapshots:
        builder.read_xqueues(document)
    source = "xserver log" + (f" and {len(snapshots)} GET /xqueues answer(s)" if snapshots else "")
    return SchedulerView(available=True, source=source, policy=builder.policy,
                         processes=sorted(builder.processes.values(), key=lambda process: process.pid),
                         xserver_end=xserver_end, xserver_died=xserver_died)


def unavailable(note: str) -> SchedulerView:
    return SchedulerView(available=False, note=note)


def role_summary(connected: bool | None, priorities: list[int]) -> str:
    """What the xserver saw of one role, in a few words ("-" when its view was not recorded)."""
    if connected is None:
        return "-"
    if not connected:
        return "never connected"
    if not priorities:
        return "connected, no XQueue"
    distinct = sorted(set(priorities))
    return f"connected, {len(priorities)} XQueue(s) at priority {', '.join(map(str, distinct))}"
