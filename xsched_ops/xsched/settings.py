"""XSched's per-process settings (environment variables), as one table.

From XSched v1.2: the scheduler kind, the policy (which makes the scheduler *local*), and the
automatic XQueue knobs. Used by the environment builder and by the doctor's lint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

POLICIES = ("HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF", "LAX", "AWF", "CFS", "MLFQ")
SCHEDULERS = ("LCL", "GLB", "APP")


@dataclass(frozen=True)
class SettingSpec:
    name: str
    meaning: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    default: str | None = None

    def problem(self, value: str) -> str | None:
        """Why ``value`` is not acceptable for this setting, or None."""
        if self.choices:
            if value not in self.choices:
                return f"{value!r} is not one of {', '.join(self.choices)}"
            return None
        if self.minimum is not None or self.maximum is not None:
            try:
                number = int(value)
            except ValueError:
                return f"{value!r} is not an integer"
            if self.minimum is not None and number < self.minimum:
                return f"{number} is below the minimum {self.minimum}"
            if self.maximum is not None and number > self.maximum:
                return f"{number} is above the maximum {self.maximum}"
        return None


_SPECS = [
    SettingSpec("XSCHED_SCHEDULER", "scheduler: GLB (xserver), APP (the application's); LCL alone is APP: a local scheduler needs XSCHED_POLICY",
                SCHEDULERS, default="APP"),
    SettingSpec("XSCHED_POLICY", "policy of a LOCAL scheduler; when set, XSCHED_SCHEDULER is ignored", POLICIES),
    SettingSpec("XSCHED_AUTO_XQUEUE", "create XQueues for the process's streams automatically", ("ON", "OFF")),
    SettingSpec("XSCHED_AUTO_XQUEUE_LEVEL", "preemption level of automatic XQueues", minimum=1, maximum=3),
    SettingSpec("XSCHED_AUTO_XQUEUE_THRESHOLD", "in-flight commands per XQueue", minimum=1, maximum=65536, default="16"),
    SettingSpec("XSCHED_AUTO_XQUEUE_BATCH_SIZE", "commands launched per batch (1..threshold)", minimum=1,
                maximum=65536, default="8"),
    SettingSpec("XSCHED_AUTO_XQUEUE_PRIORITY", "priority, bigger is higher", minimum=-256, maximum=255, default="0"),
    SettingSpec("XSCHED_AUTO_XQUEUE_UTILIZATION", "utilization share (utilization policies)", minimum=0, maximum=100),
    SettingSpec("XSCHED_AUTO_XQUEUE_TIMESLICE", "time slice in microseconds", minimum=1, maximum=10**9),
    SettingSpec("XSCHED_AUTO_XQUEUE_DEADLINE", "deadline in microseconds", minimum=1, maximum=10**12),
    SettingSpec("XSCHED_AUTO_XQUEUE_LAXITY", "laxity in microseconds", minimum=0, maximum=10**12),
]

SETTINGS: dict[str, SettingSpec] = {spec.name: spec for spec in _SPECS}

SchedulerKind = Literal["global", "local", "app"]


@dataclass(frozen=True)
class EffectiveScheduler:
    """The scheduler a process under XSched really gets, and why (see ``effective_scheduler``)."""

    kind: SchedulerKind
    reason: str
    log_line: str  # what the process prints at start-up (INFO), without the log prefix

    @property
    def schedules(self) -> bool:
        """False for the app-managed scheduler: nothing suspends or resumes the XQueues."""
        return self.kind != "app"


def effective_scheduler(env: Mapping[str, str]) -> EffectiveScheduler:
    """Which scheduler XSched 1.2 creates for a process with ``env`` (``CreateScheduler``).

    The one rule, in XSched's order:

    ========================================  ==========  ===========================================
    environment                               kind        start-up line
    ========================================  ==========  ===========================================
    XSCHED_POLICY a valid policy (any         ``local``   ``using local scheduler with policy P``
    XSCHED_SCHEDULER, GLB included)
    else XSCHED_SCHEDULER=GLB (an invalid     ``global``  ``using global scheduler``
    XSCHED_POLICY such as GBL is ignored)
    everything else: nothing set, APP, LCL    ``app``     ``using app-managed scheduler``
    without a valid policy, GBL as policy
    ========================================  ==========  ===========================================

    ``app`` means the application must suspend/resume its XQueues itself: for an unmodified
    program nothing is scheduled, and XSched reports no error.
    """
    policy = env.get("XSCHED_POLICY")
    scheduler = env.get("XSCHED_SCHEDULER")
    if policy in POLICIES:
        reason = f"XSCHED_POLICY={policy} is a policy: each process gets its own local scheduler"
        if scheduler is not None and scheduler != "LCL":
            reason += f" (XSCHED_SCHEDULER={scheduler} is ignored)"
        return EffectiveScheduler("local", reason, f"using local scheduler with policy {policy}")
    ignored = f" (XSCHED_POLICY={policy} is not a policy and is ignored)" if policy is not None else ""
    if scheduler == "GLB":
        return EffectiveScheduler("global", "XSCHED_SCHEDULER=GLB: the xserver schedules the process" + ignored,
                                  "using global scheduler")
    if scheduler == "LCL":
        why = "XSCHED_SCHEDULER=LCL without a valid XSCHED_POLICY falls through to the app-managed scheduler"
    elif scheduler is None or scheduler == "APP":
        why = ("XSCHED_SCHEDULER=APP" if scheduler else "neither XSCHED_SCHEDULER=GLB nor a valid XSCHED_POLICY"
               ) + ": the app-managed scheduler"
    else:
        why = f"XSCHED_SCHEDULER={scheduler} is not a scheduler: the app-managed scheduler"
    return EffectiveScheduler("app", why + ignored + "; nothing is scheduled unless the application does it",
                              "using app-managed scheduler")


# Not settings of the XSched runtime, but variables the HAL reads to find the real driver.
RUNTIME_LIB_VARIABLES_PREFIX = "XSCHED_"
RUNTIME_LIB_VARIABLE_SUFFIX = "_LIB"


def is_runtime_lib_variable(name: str) -> bool:
    return name.startswith(RUNTIME_LIB_VARIABLES_PREFIX) and name.endswith(RUNTIME_LIB_VARIABLE_SUFFIX)


@dataclass(frozen=True)
class RoleScheduling:
    """XSched settings of one process (a role of the experiment)."""

    scheduler: str = "GLB"
    priority: int = 0
    level: int = 1
    threshold: int = 16
    batch_size: int = 8
    auto_xqueue: bool = True

    def as_environment(self) -> dict[str, str]:
        return {
            "XSCHED_SCHEDULER": self.scheduler,
            "XSCHED_AUTO_XQUEUE": "ON" if self.auto_xqueue else "OFF",
            "XSCHED_AUTO_XQUEUE_PRIORITY": str(self.priority),
            "XSCHED_AUTO_XQUEUE_LEVEL": str(self.level),
            "XSCHED_AUTO_XQUEUE_THRESHOLD": str(self.threshold),
            "XSCHED_AUTO_XQUEUE_BATCH_SIZE": str(self.batch_size),
        }


# The fixed-priority recipe of the XSched authors (MISSION.md): high priority 1, low priority 0
# with a smaller threshold and batch.
DEFAULT_ROLES = {
    "high": RoleScheduling(priority=1, threshold=16, batch_size=8),
    "low": RoleScheduling(priority=0, threshold=4, batch_size=2),
}
