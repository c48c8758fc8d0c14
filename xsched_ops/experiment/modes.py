"""The four modes of the experiment and the order of trials.

- ``standalone``: the high-priority role alone (the floor), natively;
- ``baseline``: both roles natively, with the profile's (or ``--placement``'s) placement;
- ``xsched``: both roles as separate processes, each with its computed XSched environment, with
  the xserver running;
- ``priority-streams``: both roles in one process, the high-priority stream with a higher native
  stream priority (what a user would try without XSched).

Placement ``mps`` (CUDA only) runs the roles as processes under an NVIDIA MPS daemon of the trial,
in modes standalone, baseline and xsched (``xsched_ops.experiment.mps``).
"""

from __future__ import annotations

from dataclasses import dataclass

from xsched_ops.errors import UsageError
from xsched_ops.profiles import Profile
from xsched_ops.results.models import MODES

DEFAULT_MODES: tuple[str, ...] = ("baseline", "xsched")
PLACEMENTS = ("processes", "streams", "shared-stream", "priority-streams", "mps")


@dataclass(frozen=True)
class ModePlan:
    mode: str
    roles: tuple[str, ...]
    placement: str  # the workload's placement (mps runs as processes)
    uses_xsched: bool
    mps: bool = False  # the roles run as clients of an NVIDIA MPS daemon of the trial

    @property
    def label(self) -> str:
        """The placement as results show it."""
        return "mps" if self.mps else self.placement


def mode_plan(mode: str, profile: Profile, placement: str | None = None) -> ModePlan:
    """What a trial of ``mode`` runs: which roles, in which placement, with or without XSched."""
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}", f"modes: {', '.join(MODES)}")
    if placement is not None and placement not in PLACEMENTS:
        raise UsageError(f"unknown placement {placement!r}", f"placements: {', '.join(PLACEMENTS)}")
    chosen = placement or profile.placement
    mps = chosen == "mps"
    if mode == "standalone":
        return ModePlan(mode, ("high",), "processes", False, mps)
    if mode == "priority-streams":
        return ModePlan(mode, ("high", "low"), "priority-streams", False)
    if mode == "xsched":
        if chosen not in ("processes", "mps"):
            raise UsageError(
                f"mode xsched needs placement processes (got {chosen})",
                "XSched's priorities come from each process's environment; run the in-process placements "
                "in mode baseline, or pass --placement processes",
            )
        return ModePlan(mode, ("high", "low"), "processes", True, mps)
    if chosen == "priority-streams":
        raise UsageError("placement priority-streams is its own mode", "use --mode priority-streams")
    if mps:
        return ModePlan(mode, ("high", "low"), "processes", False, True)
    return ModePlan(mode, ("high", "low"), chosen, False)


def trial_order(modes: list[str] | tuple[str, ...], repeat: int) -> list[tuple[int, int, str]]:
    """``(index, repeat, mode)`` of every trial: the modes interleaved within each repeat; index from 1."""
    if repeat < 1:
        raise UsageError(f"--repeat {repeat}: must be at least 1")
    unique = list(dict.fromkeys(modes))
    if not unique:
        raise UsageError("no mode given", f"modes: {', '.join(MODES)}")
    order: list[tuple[int, int, str]] = []
    for repeat_index in range(repeat):
        for mode in unique:
            order.append((len(order) + 1, repeat_index, mode))
    return order
