"""The fuzz suite (tests/test_fuzz_inputs.py) run longer: N examples per test, counts per category.

    .venv/bin/python bench/fuzz_long.py [--examples N] [--seed S] [--markdown]

Runs pytest on the fuzz module with ``XSCHED_OPS_FUZZ_EXAMPLES=N`` (every test gets N examples
instead of its CI share) and prints the cases per category, the failures (a traceback, a wrong exit
code or more than one line on stderr: each is a failing test, shrunk by hypothesis) and the time.
Exit status 0 only when every test passed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = "tests/test_fuzz_inputs.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000, help="examples per test (default 2000)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fuzz-long-") as folder:
        counts_file = Path(folder) / "counts.json"
        junit = Path(folder) / "junit.xml"
        env = {**os.environ, "XSCHED_OPS_FUZZ_EXAMPLES": str(args.examples),
               "XSCHED_OPS_FUZZ_COUNTS": str(counts_file)}
        env.pop("XSCHED_OPS_DEBUG", None)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", MODULE, f"--junitxml={junit}"]
        if args.seed is not None:
            command.append(f"--hypothesis-seed={args.seed}")
        started = time.monotonic()
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        counts = json.loads(counts_file.read_text()) if counts_file.is_file() else {}
        tests = []
        if junit.is_file():
            for case in ElementTree.parse(junit).getroot().iter("testcase"):
                failed = case.find("failure") is not None or case.find("error") is not None
                tests.append((case.get("name"), float(case.get("time") or 0.0), failed))

    failures = sum(failed for _, _, failed in tests)
    rows = [(name, count) for name, count in sorted(counts.items())]
    if args.markdown:
        print("| category | cases |")
        print("|---|---:|")
        for name, count in rows:
            print(f"| {name} | {count} |")
        print(f"| **total** | **{sum(counts.values())}** |")
        print()
        print("| test | seconds | result |")
        print("|---|---:|---|")
        for name, seconds, failed in tests:
            print(f"| {name} | {seconds:.1f} | {'FAILED' if failed else 'passed'} |")
    else:
        for name, count in rows:
            print(f"{name:28s} {count:8d}")
        print(f"{'total':28s} {sum(counts.values()):8d}")
        for name, seconds, failed in tests:
            print(f"  {name:58s} {seconds:8.1f} s  {'FAILED' if failed else 'passed'}")
    print(f"\n{args.examples} examples per test; failing tests (tracebacks, wrong exit codes, extra lines): "
          f"{failures}; {elapsed:.0f} s")
    if completed.returncode != 0:
        print(completed.stdout[-6000:], file=sys.stderr)
    return 0 if completed.returncode == 0 and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
