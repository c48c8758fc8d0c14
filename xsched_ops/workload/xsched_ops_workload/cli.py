"""Argument parsing for ``python3 -m xsched_ops_workload {run,role,device} --spec FILE``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from xsched_ops_workload.errors import SpecError, WorkloadError
from xsched_ops_workload.events import EventLog
from xsched_ops_workload.spec import load_spec


def _run_roles(spec, role_names: list[str]) -> int:
    from xsched_ops_workload.models import SharedResources
    from xsched_ops_workload.roles import RoleRunner

    os.makedirs(spec.output_dir, exist_ok=True)
    shared = SharedResources()
    runners = [RoleRunner(spec, spec.role(name), shared) for name in role_names]

    def _terminate(signum, frame):
        # Record why the role stopped; lines already written are complete (one write each).
        for runner in runners:
            runner.write_end("error", f"terminated by {signal.Signals(signum).name}")
        os._exit(1)

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    threads = [threading.Thread(target=runner.run, name=f"role-{runner.role.name}", daemon=True)
               for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    return 0 if all(runner.status == "ok" for runner in runners) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xsched_ops_workload", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="launch the device (sim) and every role, wait for the end")
    run_parser.add_argument("--spec", required=True)
    role_parser = sub.add_parser("role", help="run the named roles in this process")
    role_parser.add_argument("--spec", required=True)
    role_parser.add_argument("--role", action="append", required=True)
    device_parser = sub.add_parser("device", help="serve the simulated device")
    device_parser.add_argument("--spec", required=True)
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        if args.command == "run":
            from xsched_ops_workload.launcher import run_launcher

            return run_launcher(spec)
        if args.command == "role":
            for name in args.role:
                spec.role(name)
            return _run_roles(spec, args.role)
        if spec.sim is None:
            raise SpecError(f"spec {spec.path}: backend {spec.backend} has no simulated device")
        from xsched_ops_workload.simdevice import run_device

        os.makedirs(spec.output_dir, exist_ok=True)
        return run_device(spec.sim.socket, spec.sim.xserver_host, spec.sim.xserver_port,
                          EventLog(os.path.join(spec.output_dir, "device.jsonl")))
    except SpecError as err:
        print(f"xsched_ops_workload: {err}", file=sys.stderr)
        return 2
    except WorkloadError as err:
        print(f"xsched_ops_workload: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
