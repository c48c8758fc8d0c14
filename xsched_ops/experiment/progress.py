"""Live progress of a run: one rich progress row per trial, fed by the workload's JSON lines.

The workload prints ``start``, ``progress``, ``end`` and launcher events on stdout (FORMAT.md);
the target's exec streams them here line by line. Figures shown: elapsed and remaining time of
the measurement window, the high-priority role's live P99 and achieved rate, the low-priority
role's iterations. Lines that are not events (warnings, loader errors) print above the bars.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn


@dataclass
class TrialFigures:
    """What the stream said so far about one trial."""

    phase: str = "starting"
    t_s: float = 0.0
    high_p99_ms: float | None = None
    high_rate: float | None = None
    high_completed: int = 0
    low_iterations: int = 0
    low_iter_per_s: float | None = None
    started_roles: dict[str, dict] = field(default_factory=dict)
    ended_roles: dict[str, dict] = field(default_factory=dict)
    other_lines: list[str] = field(default_factory=list)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class RunProgress:
    """A rich ``Progress`` for the whole run; ``trial(...)`` gives the line callback of one trial."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[clock]}"),
            TextColumn("{task.fields[figures]}"),
            console=console,
            transient=False,
            refresh_per_second=4,
            disable=not enabled,
        )
        self._lock = threading.Lock()

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def print(self, text: str, style: str | None = None) -> None:
        if self.enabled:
            self.progress.console.print(text, style=style, highlight=False, markup=False)

    def trial(self, label: str, duration_s: float) -> TrialFeed:
        task = self.progress.add_task(label, total=duration_s, clock="", figures="starting")
        return TrialFeed(self, task, label, duration_s)


class TrialFeed:
    """Parses one trial's streamed lines and updates its progress row."""

    def __init__(self, owner: RunProgress, task: TaskID, label: str, duration_s: float) -> None:
        self.owner = owner
        self.task = task
        self.label = label
        self.duration_s = duration_s
        self.figures = TrialFigures()

    def on_line(self, stream: str, line: str) -> None:
        with self.owner._lock:
            event = None
            if stream == "stdout" and line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
            if isinstance(event, dict) and "event" in event:
                self._event(event)
            else:
                self.figures.other_lines.append(f"{stream}: {line}")
                del self.figures.other_lines[:-200]
                self.owner.print(f"  [{self.label}] {line}", style="dim" if stream == "stdout" else "yellow")
            self._refresh()

    def _event(self, event: dict) -> None:
        kind = event.get("event")
        role = str(event.get("role", ""))
        figures = self.figures
        if kind == "start":
            figures.started_roles[role] = event
            xsched = event.get("xsched") or {}
            shim = "shim mapped" if xsched.get("shim_mapped") else "no shim"
            settings = ", ".join(f"{k}={v}" for k, v in sorted((xsched.get("env") or {}).items())
                                 if not k.startswith("XSCHED_OPS_")) or "no XSCHED_* settings"
            sim = event.get("sim") or {}
            decision = ""
            if "xsched_active" in sim:
                decision = f"; sim device: XSched {'active' if sim['xsched_active'] else 'inactive'}"
            self.owner.print(f"  [{self.label}] {role} pid {event.get('pid')}: {event.get('model')} "
                             f"batch {event.get('batch')} on {event.get('device')}; {shim}; {settings}{decision}")
            figures.phase = "warming up"
        elif kind == "launcher" and event.get("what") == "go":
            figures.phase = "measuring"
        elif kind == "progress":
            figures.phase = "measuring"
            figures.t_s = float(event.get("t_s") or 0.0)
            if role == "high":
                figures.high_p99_ms = event.get("p99_ms")
                figures.high_rate = event.get("achieved_rate")
                figures.high_completed = int(event.get("completed") or 0)
            else:
                figures.low_iterations = int(event.get("iterations") or 0)
                figures.low_iter_per_s = event.get("iter_per_s")
        elif kind == "end":
            figures.ended_roles[role] = event
            status = event.get("status")
            if status != "ok":
                self.owner.print(f"  [{self.label}] {role} ended: {status}: {event.get('error')}", style="red")
            if len(figures.ended_roles) >= len(figures.started_roles):
                figures.phase = "done"
        elif kind == "launcher" and event.get("what") in ("failed", "terminating", "interrupted"):
            reason = event.get("error") or event.get("reason") or event.get("signal") or ""
            self.owner.print(f"  [{self.label}] launcher {event.get('what')}: {reason}", style="red")

    def _refresh(self) -> None:
        figures = self.figures
        elapsed = min(figures.t_s, self.duration_s)
        if figures.phase == "measuring":
            clock = f"{_clock(elapsed)} elapsed, {_clock(self.duration_s - elapsed)} left"
        else:
            clock = figures.phase
        parts = []
        if figures.high_p99_ms is not None:
            parts.append(f"high P99 {figures.high_p99_ms:.1f} ms")
        if figures.high_rate is not None:
            parts.append(f"{figures.high_rate:.2f} req/s")
        if figures.low_iter_per_s is not None or figures.low_iterations:
            parts.append(f"low {figures.low_iterations} iter")
        self.owner.progress.update(self.task, completed=elapsed, clock=clock,
                                   figures=escape(", ".join(parts) or figures.phase))

    def finish(self, status: str) -> None:
        with self.owner._lock:
            if status == "complete":
                self.figures.t_s = self.duration_s
            self.figures.phase = status
            self._refresh()
