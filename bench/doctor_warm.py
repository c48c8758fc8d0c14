"""Benchmark: `xsched-ops doctor` on a warm `ok` sandbox: wall time and engine API calls.

    .venv/bin/python bench/doctor_warm.py [--container NAME] [--create] [--rounds N]
        [--baseline REF] [--no-torch]

The sandbox must exist (``xsched-ops sandbox create bench-ok --scenario ok``), or ``--create``
makes it and removes it at the end. "Warm": the image is built, the container runs, and one
doctor run (not timed) has been made before the rounds. Variants, each a fresh CLI process
(``doctor --container NAME --json``), taking turns for N rounds:

* the doctor straight on the engine's socket (the time that counts);
* the same through ``docker_api_proxy.ApiProxy``, a logging proxy on a unix socket between the
  Docker SDK and /var/run/docker.sock (``--docker-host unix:///...``): it counts the requests
  (each ``docker exec`` is three: create, start, inspect). The proxy adds a little latency;
* ``python -c pass`` for scale;
* ``--baseline REF``: the doctor as of git REF, straight and through the proxy.

Acceptance (issue 16): under 1 s, at most 8 engine API calls.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import baseline_tree, interleaved, machine_line, table  # noqa: E402
from docker_api_proxy import ApiProxy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--container", default="bench-ok")
    parser.add_argument("--create", action="store_true", help="create the sandbox first, remove it at the end")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--baseline", metavar="REF", help="also run the doctor as of this git ref")
    parser.add_argument("--no-torch", action="store_true", help="pass --no-torch to the doctor")
    args = parser.parse_args()
    python = sys.executable
    cli = [os.path.join(os.path.dirname(python), "xsched-ops")]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    if args.create:
        subprocess.run([*cli, "sandbox", "create", args.container, "--scenario", "ok"], check=True,
                       stdout=subprocess.DEVNULL)
    socket_path = os.path.join(tempfile.mkdtemp(prefix="xo-proxy-"), "docker.sock")
    proxy = ApiProxy(socket_path).start()
    counts: dict[str, list[int]] = collections.defaultdict(list)
    paths: dict[str, collections.Counter] = {}
    codes: dict[str, set[int]] = collections.defaultdict(set)
    doctor_args = ["doctor", "--container", args.container, "--json"] + (["--no-torch"] if args.no_torch else [])

    def doctor(name: str, command: list[str], through_proxy: bool, run_env: dict[str, str], cwd: str | None = None):
        def run() -> None:
            host = ["--docker-host", proxy.docker_host] if through_proxy else []
            if through_proxy:
                proxy.reset()
            completed = subprocess.run([*command, *host, *doctor_args], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, env=run_env, cwd=cwd)
            codes[name].add(completed.returncode)
            if through_proxy:
                requests = proxy.reset()
                counts[name].append(len(requests))
                paths[name] = collections.Counter(f"{method} {_shape(path)}" for method, path in requests)
        return run

    variants = {
        "doctor": doctor("doctor", cli, False, env),
        "doctor through the proxy": doctor("doctor through the proxy", cli, True, env),
    }
    if args.baseline:
        tree = baseline_tree(args.baseline)
        old_env = {**env, "PYTHONPATH": tree}
        old = [python, "-m", "xsched_ops"]
        variants[f"{args.baseline}: doctor"] = doctor(f"{args.baseline}: doctor", old, False, old_env, tree)
        variants[f"{args.baseline}: doctor through the proxy"] = doctor(
            f"{args.baseline}: doctor through the proxy", old, True, old_env, tree)
    variants["python -c pass"] = lambda: subprocess.run([python, "-c", "pass"], env=env)
    try:
        print(machine_line())
        times = interleaved(variants, args.rounds)
    finally:
        proxy.stop()
        if args.create:
            subprocess.run([*cli, "sandbox", "rm", args.container], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    print(f"`xsched-ops {' '.join(doctor_args)}`, {args.rounds} rounds (after 1 warm-up round); exit codes: "
          + ", ".join(f"{name}: {sorted(found)}" for name, found in codes.items()) + "\n")
    extra = {name: {"API calls": "/".join(str(n) for n in sorted(set(found)))} for name, found in counts.items()}
    print(table(times, "doctor", "ratio", extra))
    for name, counter in paths.items():
        print(f"\n{name}: requests of one run")
        for request, number in counter.items():
            print(f"  {number} x {request}")


def _shape(path: str) -> str:
    """The endpoint without ids and query: /v1.41/exec/<id>/start."""
    parts = path.split("?")[0].split("/")
    shaped = ["<id>" if len(part) >= 24 and all(c in "0123456789abcdef" for c in part) else part for part in parts]
    return "/".join(shaped)


if __name__ == "__main__":
    main()
