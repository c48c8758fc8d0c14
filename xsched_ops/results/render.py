"""Plain-text figures shared by the terminal and the HTML/Markdown report: a value with its interval, a
change in percent, and the compact P99 bar chart. No rich here: terminal rendering (tables, colours,
wrapping) lives in ``xsched_ops.cli.render``.
"""

from __future__ import annotations

from xsched_ops.results.compare import ModeBar
from xsched_ops.results.models import Interval

_EIGHTHS = " ▏▎▍▌▋▊▉█"


def format_value(interval: Interval, digits: int = 2) -> str:
    if interval.mean is None:
        return "n/a"
    text = f"{interval.mean:.{digits}f}"
    if interval.low is not None and interval.high is not None:
        text += f" ±{(interval.high - interval.low) / 2:.{digits}f}"
    return text


def format_change(change: float | None) -> str:
    return "n/a" if change is None else f"{change:+.1f}%"


def bar_chart_lines(bars: list[ModeBar], width: int = 40, unit: str = "ms") -> list[str]:
    """A compact horizontal bar chart of high-priority P99 per mode (linear, longest bar = width)."""
    if not bars:
        return []
    label_width = max(len(bar.label) for bar in bars)
    largest = max((bar.p99_ms.mean for bar in bars if bar.p99_ms.mean is not None), default=0.0)
    lines = ["High-priority P99 latency per mode"]
    for bar in bars:
        value = bar.p99_ms.mean
        if value is None:
            drawn, figure = "", "no valid data"
        else:
            eighths = round(value / largest * width * 8) if largest > 0 else 0
            eighths = max(eighths, 1) if value > 0 else 0
            drawn = "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")
            figure = f"{value:.2f} {unit}"
            if bar.p99_ms.low is not None and bar.p99_ms.high is not None:
                figure += f" [{bar.p99_ms.low:.2f}, {bar.p99_ms.high:.2f}]"
        if not bar.valid:
            figure += "  (INVALID)"
        lines.append(f"  {bar.label.ljust(label_width)} {drawn.ljust(width)} {figure}")
    return lines
