"""The doctor: a registry of checks over a target, each returning findings; no printing inside checks."""

from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.findings import Finding
from xsched_ops.doctor.registry import run_checks

__all__ = ["DoctorContext", "Finding", "run_checks"]
