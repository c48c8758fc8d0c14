"""The profile's schema: pydantic models with the bounds of ``xsched_ops.profiles`` (see its table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xsched_ops.errors import ProfileError
from xsched_ops.xsched.settings import POLICIES

PROFILES_ENV = "XSCHED_OPS_PROFILES"
REPO_PROFILES_DIR = Path(__file__).resolve().parent.parent.parent / "profiles"
XSCHED_POLICIES = POLICIES  # one list of XSched's policies: xsched_settings owns it
Placement = Literal["processes", "streams", "shared-stream", "priority-streams", "mps"]
TIER_NAMES = ("excellent", "good", "acceptable")  # best first; compare adds "fail" below them

MAX_DURATION_S = 86400.0
MAX_WARMUP_S = 3600.0
MAX_DRAIN_S = 3600.0
MAX_WARMUP_ITERATIONS = 10_000
MAX_MS = 600_000.0  # SLA and tier latencies: ten minutes
MAX_RATE = 10_000.0  # requests per second of the open-loop role
MAX_TRACE_REQUESTS = 10_000_000  # rate * duration_s: the trace is built in memory in the target
MAX_BATCH = 65_536
MAX_IMAGE_SIZE = 4096
MAX_XSCHED_THRESHOLD = 65_536
MAX_SIM_KERNELS = 100_000
MAX_PROFILE_BYTES = 1 << 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ArrivalSettings(_Strict):
    """Seeded arrival trace of the high-priority role: the same requests in every mode."""

    process: Literal["uniform", "poisson"] = "uniform"
    jitter: float = Field(0.1, ge=0.0, lt=1.0, description="uniform: share of the mean gap each arrival moves")
    seed: int = 42


class SuccessTier(_Strict):
    p99_ms: float = Field(gt=0, le=MAX_MS, description="XSched high-priority P99 must be below this")
    p99_improvement_pct: float = Field(ge=0, le=100, description="P99 improvement over baseline must exceed this")
    low_throughput_loss_pct: float = Field(ge=0, le=100, description="low-priority throughput loss must stay below")


class XSchedGlobal(_Strict):
    scheduler: Literal["GLB", "LCL", "APP"] = "GLB"
    xserver_policy: str = "HPF"
    xserver_port: int = Field(50000, ge=1, le=65535)

    @model_validator(mode="after")
    def _known_policy(self) -> XSchedGlobal:
        if self.xserver_policy not in XSCHED_POLICIES:
            raise ValueError(f"xserver_policy {self.xserver_policy!r} is not an XSched policy "
                             f"({', '.join(XSCHED_POLICIES)})")
        return self


class XSchedRole(_Strict):
    priority: int = Field(0, ge=-256, le=255, description="XSCHED_AUTO_XQUEUE_PRIORITY (bigger is higher)")
    level: int = Field(1, ge=1, le=3)
    threshold: int = Field(16, ge=1, le=MAX_XSCHED_THRESHOLD, description="in-flight commands per XQueue")
    batch_size: int = Field(8, ge=1, le=MAX_XSCHED_THRESHOLD, description="commands launched at a time, 1..threshold")

    @model_validator(mode="after")
    def _batch_within_threshold(self) -> XSchedRole:
        if self.batch_size > self.threshold:
            raise ValueError(f"batch_size {self.batch_size} exceeds threshold {self.threshold} "
                             f"(allowed: 1 <= batch_size <= threshold)")
        return self


class Role(_Strict):
    model: str = Field(description="torchvision:NAME or file:PATH:FACTORY")
    batch: int = Field(ge=1, le=MAX_BATCH)
    rate: float | None = Field(None, gt=0, le=MAX_RATE, description="requests per second (high role only)")
    image_size: int = Field(224, ge=8, le=MAX_IMAGE_SIZE)
    xsched: XSchedRole = Field(default_factory=XSchedRole)

    @model_validator(mode="after")
    def _model_form(self) -> Role:
        if self.model.startswith("torchvision:"):
            if not self.model.split(":", 1)[1]:
                raise ValueError("model 'torchvision:' needs a name, e.g. torchvision:resnet18")
        elif self.model.startswith("file:"):
            path, sep, factory = self.model[len("file:"):].rpartition(":")
            if not sep or not path or not factory:
                raise ValueError(f"model {self.model!r}: expected file:PATH:FACTORY")
        else:
            raise ValueError(f"model {self.model!r}: expected torchvision:NAME or file:PATH:FACTORY")
        return self


class SimKernels(_Strict):
    """One inference of batch b: ``kernels`` kernels of (fixed_ms + ms_per_image*b)/kernels ms."""

    kernels: int = Field(ge=1, le=MAX_SIM_KERNELS)
    ms_per_image: float = Field(ge=0, le=60_000.0)
    fixed_ms: float = Field(0.0, ge=0, le=MAX_MS)

    def inference_ms(self, batch: int) -> float:
        return self.fixed_ms + self.ms_per_image * batch


def _default_sim_models() -> dict[str, SimKernels]:
    return {
        "torchvision:resnet18": SimKernels(kernels=6, ms_per_image=3.0),
        "torchvision:resnet50": SimKernels(kernels=50, ms_per_image=500.0 / 1024),
    }


class SimSettings(_Strict):
    models: dict[str, SimKernels] = Field(default_factory=_default_sim_models)


GridValue = int | float | str | bool
MAX_SWEEP_REPEAT = 100
MAX_GRID_VALUES = 1000
MAX_SWEEP_CELLS = 10_000


def _flatten_grid(table: Any, prefix: str = "") -> Any:
    """``[sweep.grid]`` as ``{"low.batch": [...]}``: TOML's dotted keys (``low.batch = [...]``) arrive as nested
    tables and quoted ones (``"low.batch" = [...]``) flat; both mean the same key."""
    if not isinstance(table, dict):
        return table
    flat: dict[str, Any] = {}
    for key, value in table.items():
        part = f'"{key}"' if ("." in key or ":" in key) and isinstance(value, dict) else str(key)
        dotted = f"{prefix}.{part}" if prefix else part
        if isinstance(value, dict):
            flat.update(_flatten_grid(value, dotted))
        else:
            flat[dotted] = value
    return flat


class SweepSettings(_Strict):
    """``[sweep]``: what ``xsched-ops sweep PROFILE`` runs when no ``--grid`` is given."""

    grid: dict[str, list[GridValue]] = Field(default_factory=dict,
                                             description="profile key -> its values, e.g. low.batch = [8, 64, 256]")
    modes: list[str] | None = Field(None, description="modes of every cell (default: baseline, xsched)")
    repeat: int = Field(1, ge=1, le=MAX_SWEEP_REPEAT)
    seed: int = Field(1, description="seed of the cells' random order")
    max_duration_s: float | None = Field(None, gt=0, le=MAX_DURATION_S,
                                         description="a cell's window may grow to this until its P99 rule is met")
    p99_interval_pct: float | None = Field(None, gt=0, le=100,
                                           description="target half width of the P99 interval across repeats, "
                                                       "% of its mean")

    @model_validator(mode="before")
    @classmethod
    def _flat_grid(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("grid"), dict):
            data = {**data, "grid": _flatten_grid(data["grid"])}
        return data

    @model_validator(mode="after")
    def _known_modes_and_values(self) -> SweepSettings:
        from xsched_ops.results.models import MODES  # here: the results package imports this one

        for mode in self.modes or []:
            if mode not in MODES:
                raise ValueError(f"mode {mode!r} is not a mode ({', '.join(MODES)})")
        if self.modes is not None and (not self.modes or len(set(self.modes)) != len(self.modes)):
            raise ValueError("modes must name each mode once, at least one")
        for key, values in self.grid.items():
            if not values or len(values) > MAX_GRID_VALUES:
                raise ValueError(f"grid {key}: give 1 to {MAX_GRID_VALUES} values")
            if len({repr(value) for value in values}) != len(values):
                raise ValueError(f"grid {key}: a value is repeated")
        return self


class Profile(_Strict):
    name: str
    description: str = ""
    duration_s: float = Field(180.0, gt=0, le=MAX_DURATION_S)
    warmup_s: float = Field(5.0, ge=0, le=MAX_WARMUP_S)
    warmup_iterations: int = Field(3, ge=0, le=MAX_WARMUP_ITERATIONS)
    drain_s: float = Field(5.0, ge=0, le=MAX_DRAIN_S,
                           description="after the window, serve issued requests at most this long")
    placement: Placement = "processes"
    sla_ms: float = Field(100.0, gt=0, le=MAX_MS)
    arrival: ArrivalSettings = Field(default_factory=ArrivalSettings)
    tiers: dict[Literal["excellent", "good", "acceptable"], SuccessTier]
    xsched: XSchedGlobal = Field(default_factory=XSchedGlobal)
    high: Role
    low: Role
    sim: SimSettings = Field(default_factory=SimSettings)
    sweep: SweepSettings = Field(default_factory=SweepSettings)

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.high.rate is None:
            raise ValueError("high.rate is required (requests per second)")
        if self.low.rate is not None:
            raise ValueError("low.rate makes no sense: the low-priority role runs back to back")
        requests = self.high.rate * self.duration_s
        if requests > MAX_TRACE_REQUESTS:
            raise ValueError(f"high.rate {self.high.rate:g} x duration_s {self.duration_s:g} = {requests:.0f} requests; "
                             f"allowed: at most {MAX_TRACE_REQUESTS} requests in a trial (lower the rate or the "
                             f"duration)")
        missing = [name for name in TIER_NAMES if name not in self.tiers]
        if missing:
            raise ValueError(f"tiers lacks {', '.join(missing)}")
        return self

    def sim_kernels(self, model: str) -> SimKernels:
        """Kernel table entry of a model (ProfileError when the table lacks it)."""
        if model not in self.sim.models:
            raise ProfileError(f"profile {self.name}: sim.models has no entry for {model!r}",
                               f"add [sim.models.\"{model}\"] with kernels and ms_per_image "
                               f"(known: {', '.join(sorted(self.sim.models))})")
        return self.sim.models[model]
