"""Shared pieces of the benchmark scripts: interleaved timing, medians, a Markdown table, and an
older version of the package to run side by side (``--baseline REF``).

Every variant of a benchmark runs once per round, in turn, for N rounds (not N times in a row):
on a shared, noisy machine a burst of load then hits every variant alike. Medians and minimums
are reported, and each median's ratio to a reference variant.
"""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def interleaved(variants: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall times of each variant, ``rounds`` times, the variants taking turns in every round."""
    for _ in range(warmup):
        for function in variants.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, function in variants.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def run_quiet(argv: list[str], env: Mapping[str, str] | None = None, check: bool = False,
              cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=None if env is None else dict(env),
                          check=check, cwd=cwd)


def table(times: Mapping[str, list[float]], reference: str, ratio_label: str = "ratio",
          extra: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """A Markdown table: variant, median, min, ratio of the median to ``reference``'s, extra columns."""
    extra = extra or {}
    extra_names = list(dict.fromkeys(column for columns in extra.values() for column in columns))
    base = statistics.median(times[reference])
    lines = ["| variant | median s | min s | " + ratio_label + " |" + "".join(f" {c} |" for c in extra_names),
             "|---|---:|---:|---:|" + "---:|" * len(extra_names)]
    for name, values in times.items():
        median = statistics.median(values)
        cells = "".join(f" {extra.get(name, {}).get(column, '')} |" for column in extra_names)
        lines.append(f"| {name} | {median:.3f} | {min(values):.3f} | {median / base:.2f} |{cells}")
    return "\n".join(lines)


def ratio(times: Mapping[str, list[float]], numerator: str, denominator: str) -> float:
    return statistics.median(times[numerator]) / statistics.median(times[denominator])


def baseline_tree(ref: str) -> str:
    """A folder holding ``xsched_ops`` as of git ``ref`` (removed at exit). To run that version
    beside the working tree's: ``python -m xsched_ops`` with the folder first on PYTHONPATH *and*
    as the working directory (``-m`` and ``-c`` put the working directory first on sys.path, and
    the repository's own folder would win)."""
    folder = tempfile.mkdtemp(prefix="xo-baseline-")
    atexit.register(shutil.rmtree, folder, True)
    archive = subprocess.run(["git", "archive", ref, "xsched_ops"], cwd=REPOSITORY, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    return folder


def machine_line() -> str:
    """Cores, load and kernel: what a reader needs to weigh the numbers."""
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start, "
            f"{os.uname().release}")
