"""Experiment profiles (profiles/*.toml), validated by pydantic, with command-line overrides.

A profile names the two roles of the dual-model experiment (``high``: the online model sent
requests open loop; ``low``: the batch model run back to back), how long to measure, the
arrival process, the placement, the SLA and the seed's success tiers, the XSched settings of
each role and the simulated device's kernel table.

Lookup order for a name: the folders in ``XSCHED_OPS_PROFILES`` (``os.pathsep``-separated),
then the repository's ``profiles/`` folder. Anything ending in ``.toml`` or containing a path
separator is taken as a path.

Bounds (every number must also be finite: ``inf``, ``nan`` and values beyond the bounds are
refused when the profile is loaded or overridden, with one line naming the key, the value and
the allowed range):

==============================  ===========================================================
key                             allowed
==============================  ===========================================================
duration_s                      0 < x <= 86400 (one day)
warmup_s, drain_s               0 <= x <= 3600
warmup_iterations               0 .. 10000
sla_ms, tiers.*.p99_ms          0 < x <= 600000 (ten minutes)
high.rate                       0 < x <= 10000 requests per second
high.rate * duration_s          at most 10,000,000 requests in the trace
high.batch, low.batch           1 .. 65536
high.image_size, low.image_size 8 .. 4096
*.xsched.priority               -256 .. 255 (XSched's range)
*.xsched.level                  1 .. 3
*.xsched.threshold              1 .. 65536
*.xsched.batch_size             1 .. threshold
sim.models.*.kernels            1 .. 100000
sim.models.*.ms_per_image       0 .. 60000
sim.models.*.fixed_ms           0 .. 600000
sweep.repeat                    1 .. 100
sweep.max_duration_s            0 < x <= 86400
sweep.p99_interval_pct          0 < x <= 100
sweep.modes                     modes of results.models.MODES, each once
sweep.grid                      every cell a valid profile; 1 .. 1000 values a key, at most 10000 cells
==============================  ===========================================================

The ``[sweep]`` table is what ``xsched-ops sweep PROFILE`` runs when no ``--grid`` is given::

    [sweep]
    modes = ["baseline", "xsched"]
    repeat = 3
    max_duration_s = 600       # a cell's window may grow to this until its P99 rule is met
    [sweep.grid]
    low.xsched.threshold = [2, 4, 16, 64]   # or "low.xsched.threshold" = [...]

A profile file is read as UTF-8 (at most 1 MiB); anything else is one line naming the file and
the byte offset.
"""

from xsched_ops.profiles.loading import (
    check_sweep_grid,
    find_profile,
    grid_literal,
    list_profiles,
    load_profile,
    load_profile_file,
    profile_dirs,
    summary_line,
)
from xsched_ops.profiles.model import (
    MAX_BATCH,
    MAX_DRAIN_S,
    MAX_DURATION_S,
    MAX_IMAGE_SIZE,
    MAX_MS,
    MAX_PROFILE_BYTES,
    MAX_RATE,
    MAX_SIM_KERNELS,
    MAX_TRACE_REQUESTS,
    MAX_WARMUP_ITERATIONS,
    MAX_WARMUP_S,
    MAX_XSCHED_THRESHOLD,
    PROFILES_ENV,
    REPO_PROFILES_DIR,
    TIER_NAMES,
    XSCHED_POLICIES,
    ArrivalSettings,
    Placement,
    Profile,
    Role,
    SimKernels,
    SimSettings,
    SuccessTier,
    SweepSettings,
    XSchedGlobal,
    XSchedRole,
)
from xsched_ops.profiles.overrides import apply_overrides
from xsched_ops.profiles.schema import allowed_range

__all__ = [
    "MAX_BATCH", "MAX_DRAIN_S", "MAX_DURATION_S", "MAX_IMAGE_SIZE", "MAX_MS", "MAX_PROFILE_BYTES", "MAX_RATE",
    "MAX_SIM_KERNELS", "MAX_TRACE_REQUESTS", "MAX_WARMUP_ITERATIONS", "MAX_WARMUP_S", "MAX_XSCHED_THRESHOLD",
    "PROFILES_ENV", "REPO_PROFILES_DIR", "TIER_NAMES", "XSCHED_POLICIES", "ArrivalSettings", "Placement", "Profile",
    "Role", "SimKernels", "SimSettings", "SuccessTier", "XSchedGlobal", "XSchedRole", "allowed_range",
    "apply_overrides", "find_profile", "list_profiles", "load_profile", "load_profile_file", "profile_dirs",
    "summary_line", "check_sweep_grid", "grid_literal", "SweepSettings",
]
