"""Benchmark: the command line's fixed cost, side by side with a bare interpreter, in one run.

    .venv/bin/python bench/startup.py [--rounds N] [--baseline REF]

Variants, each a fresh process, taking turns for N rounds: ``python -c pass`` (the same venv
interpreter, site and the editable install's finder included: the floor), ``python -c "import
typer"`` (what the framework alone costs), ``xsched-ops --version``, ``xsched-ops --help`` and
``xsched-ops doctor --help``; with ``--baseline REF`` also ``--version`` and ``--help`` of the
package as of git REF (run as ``python -m xsched_ops`` with REF's tree first on PYTHONPATH).
Medians, minimums, and each median's ratio to ``python -c pass``. Acceptance (issue 16):
``--version`` at most 5x, ``--help`` at most 8x.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import baseline_tree, interleaved, machine_line, ratio, run_quiet, table  # noqa: E402

PASS = "python -c pass"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--baseline", metavar="REF", help="also run the package as of this git ref")
    args = parser.parse_args()
    python = sys.executable
    cli = os.path.join(os.path.dirname(python), "xsched-ops")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "COLUMNS": "100"}
    variants = {
        PASS: lambda: run_quiet([python, "-c", "pass"], env),
        'python -c "import typer"': lambda: run_quiet([python, "-c", "import typer"], env),
        "xsched-ops --version": lambda: run_quiet([cli, "--version"], env),
        "xsched-ops --help": lambda: run_quiet([cli, "--help"], env),
        "xsched-ops doctor --help": lambda: run_quiet([cli, "doctor", "--help"], env),
    }
    if args.baseline:
        tree = baseline_tree(args.baseline)
        old_env = {**env, "PYTHONPATH": tree}
        variants[f"{args.baseline}: --version"] = lambda: run_quiet([python, "-m", "xsched_ops", "--version"], old_env,
                                                                    cwd=tree)
        variants[f"{args.baseline}: --help"] = lambda: run_quiet([python, "-m", "xsched_ops", "--help"], old_env,
                                                                 cwd=tree)
    print(machine_line())
    times = interleaved(variants, args.rounds)
    print(f"{args.rounds} rounds\n")
    print(table(times, PASS, "x python -c pass"))
    version, help_ = ratio(times, "xsched-ops --version", PASS), ratio(times, "xsched-ops --help", PASS)
    print(f"\n--version: {version:.2f}x python -c pass (at most 5x: {'yes' if version <= 5 else 'NO'}); "
          f"--help: {help_:.2f}x (at most 8x: {'yes' if help_ <= 8 else 'NO'})")


if __name__ == "__main__":
    main()
