"""Reading the workload's JSON-lines files (format 1, see xsched_ops/workload/FORMAT.md).

Readers are lenient where the writer may have been killed: a line that does not parse (a file
cut short by a copy of a dying process) is skipped and counted, unknown keys are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

EVENTS_PREFIX = "events-"
EVENTS_SUFFIX = ".jsonl"


@dataclass
class EventFile:
    path: Path
    events: list[dict] = field(default_factory=list)
    unreadable_lines: int = 0

    def of(self, kind: str) -> list[dict]:
        return [event for event in self.events if event.get("event") == kind]

    def first(self, kind: str) -> dict | None:
        return next((event for event in self.events if event.get("event") == kind), None)


def read_jsonl(path: Path) -> EventFile:
    result = EventFile(path=path)
    if not path.is_file():
        return result
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            text = line.strip()
            if not text:
                continue
            try:
                event = json.loads(text)
            except json.JSONDecodeError:
                result.unreadable_lines += 1
                continue
            if isinstance(event, dict):
                result.events.append(event)
            else:
                result.unreadable_lines += 1
    return result


def role_event_files(trial_dir: Path) -> dict[str, Path]:
    """``events-<role>.jsonl`` files of a trial, by role name."""
    files: dict[str, Path] = {}
    for path in sorted(trial_dir.glob(f"{EVENTS_PREFIX}*{EVENTS_SUFFIX}")):
        role = path.name[len(EVENTS_PREFIX): -len(EVENTS_SUFFIX)]
        if role:
            files[role] = path
    return files


@dataclass(frozen=True)
class HighSample:
    """One open-loop request, times in seconds relative to t0 (see FORMAT.md ``sample``)."""

    seq: int
    intended_s: float
    issued_s: float | None
    started_s: float | None
    done_s: float | None
    error: str | None

    def latency_s(self, censor_at_s: float) -> float:
        """done - intended; for an unserved request, its lower bound ``censor_at_s - intended``."""
        if self.done_s is not None:
            return self.done_s - self.intended_s
        return max(0.0, censor_at_s - self.intended_s)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def high_samples(events: EventFile) -> list[HighSample]:
    """The ``sample`` events, one per trace index (a repeated ``seq`` keeps its last record), by intended time."""
    by_seq: dict[int, HighSample] = {}
    for event in events.of("sample"):
        intended = _number(event.get("intended_s"))
        seq = event.get("seq")
        if intended is None or not isinstance(seq, int):
            continue
        error = event.get("error")
        by_seq[seq] = HighSample(
            seq=seq,
            intended_s=intended,
            issued_s=_number(event.get("issued_s")),
            started_s=_number(event.get("started_s")),
            done_s=_number(event.get("done_s")),
            error=str(error) if error else None,
        )
    return sorted(by_seq.values(), key=lambda sample: (sample.intended_s, sample.seq))


def last_time_seen(events: EventFile) -> float | None:
    """The latest relative time in a role's file: the censoring point when its ``end`` event is missing."""
    latest: float | None = None
    for event in events.events:
        for key in ("end_s", "done_s", "started_s", "issued_s", "t_s"):
            value = _number(event.get(key))
            if value is not None and (latest is None or value > latest):
                latest = value
    return latest
