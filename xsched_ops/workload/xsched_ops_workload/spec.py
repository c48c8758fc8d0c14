"""The spec file (JSON) the host writes for one run; see FORMAT.md for every key."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from xsched_ops_workload import FORMAT_VERSION
from xsched_ops_workload.errors import SpecError

BACKENDS = ("sim", "torch")
PLACEMENTS = ("processes", "streams", "shared-stream", "priority-streams")
ROLE_KINDS = ("open-loop", "closed-loop")
ARRIVAL_PROCESSES = ("uniform", "poisson")


@dataclass(frozen=True)
class ArrivalSpec:
    process: str
    rate: float
    jitter: float
    seed: int


@dataclass(frozen=True)
class SimModelSpec:
    kernels: int
    ms_per_image: float
    fixed_ms: float = 0.0

    def kernel_durations_s(self, batch: int) -> list[float]:
        total_ms = self.fixed_ms + self.ms_per_image * batch
        return [total_ms / 1000.0 / self.kernels] * self.kernels


@dataclass(frozen=True)
class SimSpec:
    socket: str
    xserver_host: str
    xserver_port: int
    models: dict[str, SimModelSpec]


@dataclass(frozen=True)
class RuntimeSpec:
    """The GPU runtime a role process loads by name before anything else (see runtime.py)."""

    library: str | None  # None: the entry point as the process already has it (a preloaded shim's)
    init_symbol: str
    file_prefix: str = ""  # mapped files whose name starts so are recorded (the real runtime)


@dataclass(frozen=True)
class RoleSpec:
    name: str
    kind: str
    model: str
    batch: int
    env: dict[str, str] = field(default_factory=dict)
    image_size: int = 224
    runtime: RuntimeSpec | None = None


@dataclass(frozen=True)
class RunSpec:
    path: str
    run_id: str
    backend: str
    device: str
    placement: str
    duration_s: float
    warmup_s: float
    warmup_iterations: int
    drain_s: float
    barrier_timeout_s: float
    output_dir: str
    barrier_dir: str
    stdout_events: str
    progress_interval_s: float
    arrival: ArrivalSpec | None
    sim: SimSpec | None
    roles: tuple[RoleSpec, ...]

    def role(self, name: str) -> RoleSpec:
        for role in self.roles:
            if role.name == name:
                return role
        raise SpecError(f"spec {self.path}: no role named {name!r} (roles: {', '.join(r.name for r in self.roles)})")

    @property
    def open_loop_role(self) -> RoleSpec | None:
        return next((r for r in self.roles if r.kind == "open-loop"), None)

    def in_process_env(self) -> dict[str, str]:
        """The environment added to the one process of an in-process placement (union of the roles')."""
        merged: dict[str, str] = {}
        for role in self.roles:
            for key, value in role.env.items():
                if key in merged and merged[key] != value:
                    raise SpecError(
                        f"spec {self.path}: placement {self.placement} runs every role in one process, "
                        f"but the roles want different values of {key} ({merged[key]!r} and {value!r})"
                    )
                merged[key] = value
        return merged


def _require(raw: dict, key: str, where: str, types: type | tuple[type, ...]):
    if key not in raw:
        raise SpecError(f"{where}: missing key {key!r}")
    value = raw[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SpecError(f"{where}: key {key!r} must be {types}, not a boolean")
    if not isinstance(value, types):
        raise SpecError(f"{where}: key {key!r} must be {getattr(types, '__name__', types)}, got {value!r}")
    return value


def _choice(value: str, choices: tuple[str, ...], where: str, key: str) -> str:
    if value not in choices:
        raise SpecError(f"{where}: {key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_spec(raw: dict, path: str = "<spec>") -> RunSpec:
    where = f"spec {path}"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: top level must be a JSON object")
    if raw.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise SpecError(f"{where}: format {raw.get('format')!r} is not supported (this workload reads {FORMAT_VERSION})")
    backend = _choice(_require(raw, "backend", where, str), BACKENDS, where, "backend")
    placement = _choice(_require(raw, "placement", where, str), PLACEMENTS, where, "placement")
    output_dir = os.path.abspath(_require(raw, "output_dir", where, str))
    number = (int, float)

    roles: list[RoleSpec] = []
    for index, role_raw in enumerate(_require(raw, "roles", where, list)):
        role_where = f"{where}: roles[{index}]"
        if not isinstance(role_raw, dict):
            raise SpecError(f"{role_where} must be an object")
        env = role_raw.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise SpecError(f"{role_where}: env must map names to strings")
        name = _require(role_raw, "name", role_where, str)
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise SpecError(f"{role_where}: role name {name!r} must be letters, digits, '-' or '_'")
        runtime = None
        if role_raw.get("runtime") is not None:
            runtime_raw = _require(role_raw, "runtime", role_where, dict)
            runtime_where = f"{role_where}: runtime"
            library = runtime_raw.get("library")
            if library is not None and (not isinstance(library, str) or not library):
                raise SpecError(f"{runtime_where}: library must be a name or path, or null")
            file_prefix = runtime_raw.get("file_prefix", "")
            if not isinstance(file_prefix, str):
                raise SpecError(f"{runtime_where}: file_prefix must be a string")
            runtime = RuntimeSpec(library=library,
                                  init_symbol=_require(runtime_raw, "init_symbol", runtime_where, str),
                                  file_prefix=file_prefix)
            if not runtime.init_symbol.isidentifier():
                raise SpecError(f"{runtime_where}: init_symbol must be a C identifier")
        batch = _require(role_raw, "batch", role_where, int)
        if batch < 1:
            raise SpecError(f"{role_where}: batch must be at least 1")
        roles.append(RoleSpec(
            name=name,
            kind=_choice(_require(role_raw, "kind", role_where, str), ROLE_KINDS, role_where, "kind"),
            model=_require(role_raw, "model", role_where, str),
            batch=batch,
            env=dict(env),
            image_size=int(role_raw.get("image_size", 224)),
            runtime=runtime,
        ))
    if not roles:
        raise SpecError(f"{where}: roles is empty")
    if len({r.name for r in roles}) != len(roles):
        raise SpecError(f"{where}: role names must be unique")
    if sum(r.kind == "open-loop" for r in roles) > 1:
        raise SpecError(f"{where}: at most one open-loop role")

    arrival = None
    if any(r.kind == "open-loop" for r in roles):
        arrival_raw = _require(raw, "arrival", where, dict)
        arrival_where = f"{where}: arrival"
        arrival = ArrivalSpec(
            process=_choice(_require(arrival_raw, "process", arrival_where, str), ARRIVAL_PROCESSES,
                            arrival_where, "process"),
            rate=float(_require(arrival_raw, "rate", arrival_where, number)),
            jitter=float(arrival_raw.get("jitter", 0.0)),
            seed=int(_require(arrival_raw, "seed", arrival_where, int)),
        )
        if arrival.rate <= 0:
            raise SpecError(f"{arrival_where}: rate must be positive")
        if not 0.0 <= arrival.jitter < 1.0:
            raise SpecError(f"{arrival_where}: jitter must be in [0, 1)")

    sim = None
    if backend == "sim":
        sim_raw = _require(raw, "sim", where, dict)
        sim_where = f"{where}: sim"
        models: dict[str, SimModelSpec] = {}
        for model_name, model_raw in _require(sim_raw, "models", sim_where, dict).items():
            model_where = f"{sim_where}: models[{model_name!r}]"
            if not isinstance(model_raw, dict):
                raise SpecError(f"{model_where} must be an object")
            kernels = _require(model_raw, "kernels", model_where, int)
            if kernels < 1:
                raise SpecError(f"{model_where}: kernels must be at least 1")
            models[model_name] = SimModelSpec(
                kernels=kernels,
                ms_per_image=float(_require(model_raw, "ms_per_image", model_where, number)),
                fixed_ms=float(model_raw.get("fixed_ms", 0.0)),
            )
        for role in roles:
            if role.model not in models:
                raise SpecError(f"{sim_where}: no kernel table entry for model {role.model!r} of role {role.name} "
                                f"(entries: {', '.join(sorted(models)) or 'none'})")
        sim = SimSpec(
            socket=sim_raw.get("socket") or os.path.join(output_dir, "sim-device.sock"),
            xserver_host=str(sim_raw.get("xserver_host", "127.0.0.1")),
            xserver_port=int(sim_raw.get("xserver_port", 50000)),
            models=models,
        )

    stdout_events = raw.get("stdout_events", "progress")
    _choice(stdout_events, ("progress", "all"), where, "stdout_events")
    duration_s = float(_require(raw, "duration_s", where, number))
    if duration_s <= 0:
        raise SpecError(f"{where}: duration_s must be positive")
    return RunSpec(
        path=path,
        run_id=str(raw.get("run_id", "run")),
        backend=backend,
        device=str(raw.get("device", "auto")),
        placement=placement,
        duration_s=duration_s,
        warmup_s=float(raw.get("warmup_s", 0.0)),
        warmup_iterations=int(raw.get("warmup_iterations", 1)),
        drain_s=float(raw.get("drain_s", 5.0)),
        barrier_timeout_s=float(raw.get("barrier_timeout_s", 600.0)),
        output_dir=output_dir,
        barrier_dir=os.path.abspath(raw.get("barrier_dir") or os.path.join(output_dir, "barrier")),
        stdout_events=stdout_events,
        progress_interval_s=float(raw.get("progress_interval_s", 1.0)),
        arrival=arrival,
        sim=sim,
        roles=tuple(roles),
    )


def load_spec(path: str) -> RunSpec:
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except OSError as err:
        raise SpecError(f"spec {path}: cannot read ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise SpecError(f"spec {path}: not JSON ({err})") from err
    return parse_spec(raw, os.path.abspath(path))
