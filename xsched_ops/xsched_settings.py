"""XSched's per-process settings (environment variables), as one table.

From XSched v1.2: the scheduler kind, the policy (which makes the scheduler *local*), and the
automatic XQueue knobs. Used by the environment builder and by the doctor's lint.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    SettingSpec("XSCHED_SCHEDULER", "scheduler: LCL (in-process), GLB (xserver), APP (the application's)",
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
