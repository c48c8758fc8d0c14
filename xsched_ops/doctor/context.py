"""What the checks look at: the target, its files, its environment, the XSched install, probes.

Facts are gathered lazily and once: a check that needs the in-target probe runs it the first
time; the others reuse it. The stored environment is read through the target's files from the
host when they can be reached (no command runs in the target for it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

from xsched_ops.environment import stored_env
from xsched_ops.environment.base import BaseEnvironment, choose_base
from xsched_ops.environment.builder import BuiltEnvironment, build_environment
from xsched_ops.environment.stored_env import StoredEnvironment
from xsched_ops.errors import XSchedOpsError
from xsched_ops.target.base import Target
from xsched_ops.target.fs import TargetFS
from xsched_ops.xsched import ipc_state, platforms
from xsched_ops.xsched.install import XSchedInstall, discover
from xsched_ops.xsched.platforms import Platform

PROBE_TIMEOUT_S = 180


@dataclass
class DoctorContext:
    target: Target
    xsched_prefix: str | None = None
    platform_name: str | None = None
    route: str | None = None
    probe_torch: bool = True
    notes: list[str] = field(default_factory=list)
    # Loader-model reports already computed for this context, by (executable, environment).
    loader_reports: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = field(default_factory=dict)

    @cached_property
    def fs(self) -> TargetFS:
        return self.target.fs()

    use_stored_environment: bool = True

    @cached_property
    def configured_environment(self) -> dict[str, str]:
        return self.target.environment()

    def _reachable_fs(self) -> TargetFS | None:
        """The target's files from the host, or None (a remote engine: the target reads them itself)."""
        try:
            return self.fs
        except XSchedOpsError:
            return None

    @cached_property
    def stored(self) -> StoredEnvironment | None:
        if not self.use_stored_environment:
            return None
        return stored_env.load(self.target, self._reachable_fs())

    @cached_property
    def base(self) -> BaseEnvironment:
        """What xsched-ops runs start from: the stored fix when there is one, else the target's Env."""
        return choose_base(self.stored, lambda: self.configured_environment)

    @property
    def environment_source(self) -> str:
        return self.base.source

    @property
    def environment(self) -> dict[str, str]:
        return self.base.env

    @cached_property
    def install_or_error(self) -> XSchedInstall | XSchedOpsError:
        try:
            return discover(self.fs, self.environment, self.xsched_prefix, self.platform_name)
        except XSchedOpsError as err:
            return err

    @property
    def install(self) -> XSchedInstall | None:
        value = self.install_or_error
        return value if isinstance(value, XSchedInstall) else None

    @property
    def platform(self) -> Platform:
        if self.install is not None:
            return self.install.platform
        return platforms.get(self.platform_name or "hip")

    @cached_property
    def fixed_environment(self) -> BuiltEnvironment | None:
        """The environment xsched-ops computes for a process under XSched (no role settings)."""
        if self.install is None:
            return None
        return build_environment(self.environment, self.install, self.fs, route=self.route)  # type: ignore[arg-type]

    @cached_property
    def probe(self) -> dict[str, Any]:
        """The facts the probe script collects in the target, in one command (its slow parts, the
        tools and torch, run side by side in it)."""
        script = resources.files("xsched_ops.doctor").joinpath("probe_script.py").read_text()
        env = dict(self.environment)
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env["XSCHED_OPS_PROBE_TORCH"] = "1" if self.probe_torch else "0"
        env["XSCHED_OPS_PROBE_SPEC"] = json.dumps(platforms.probe_facts_spec())
        # The probe itself must not be disturbed by a broken preload in the configured env.
        env.pop("LD_PRELOAD", None)
        # XSched's IPC state comes in the same exec (one home for that script: ipc_state).
        script += "\n" + ipc_state.probe_part()
        result = self.target.exec(["python3", "-c", script], env=env, timeout=PROBE_TIMEOUT_S)
        facts: dict[str, Any] | None = None
        ipc_report = None
        for line in result.stdout.splitlines():
            if line.startswith("XSCHED_OPS_PROBE "):
                facts = json.loads(line.removeprefix("XSCHED_OPS_PROBE "))
            elif line.startswith(ipc_state.PROBE_MARKER):
                ipc_report = json.loads(line.removeprefix(ipc_state.PROBE_MARKER))
        if facts is not None:
            if ipc_report is not None:
                facts["xsched_ipc"] = ipc_report
            return facts
        return {"error": f"could not collect: python3 probe exited {result.exit_code}: "
                         f"{(result.stderr.strip().splitlines() or [''])[-1]}"}
