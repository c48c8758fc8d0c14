"""Errors of the workload: each becomes one line in an ``end`` event or on stderr."""


class WorkloadError(Exception):
    """A failure with a message a person can act on (bad spec, missing module, device gone)."""


class SpecError(WorkloadError):
    """The spec file is missing, not JSON, or does not follow FORMAT.md."""


class BarrierAborted(WorkloadError):
    """Another part of the run failed before the start barrier opened."""
