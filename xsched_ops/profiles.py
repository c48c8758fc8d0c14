"""Experiment profiles (profiles/*.toml), validated by pydantic, with command-line overrides.

A profile names the two roles of the dual-model experiment (``high``: the online model sent
requests open loop; ``low``: the batch model run back to back), how long to measure, the
arrival process, the placement, the SLA and the seed's success tiers, the XSched settings of
each role and the simulated device's kernel table.

Lookup order for a name: the folders in ``XSCHED_OPS_PROFILES`` (``os.pathsep``-separated),
then the repository's ``profiles/`` folder. Anything ending in ``.toml`` or containing a path
separator is taken as a path.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from xsched_ops.errors import ProfileError

PROFILES_ENV = "XSCHED_OPS_PROFILES"
REPO_PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
XSCHED_POLICIES = ("HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF", "LAX", "AWF", "CFS", "MLFQ")
Placement = Literal["processes", "streams", "shared-stream", "priority-streams"]
TIER_NAMES = ("excellent", "good", "acceptable")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ArrivalSettings(_Strict):
    """Seeded arrival trace of the high-priority role: the same requests in every mode."""

    process: Literal["uniform", "poisson"] = "uniform"
    jitter: float = Field(0.1, ge=0.0, lt=1.0, description="uniform: share of the mean gap each arrival moves")
    seed: int = 42


class SuccessTier(_Strict):
    p99_ms: float = Field(gt=0, description="XSched high-priority P99 must be below this")
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
    threshold: int = Field(16, ge=1, description="in-flight commands per XQueue")
    batch_size: int = Field(8, ge=1, description="commands launched at a time, 1..threshold")

    @model_validator(mode="after")
    def _batch_within_threshold(self) -> XSchedRole:
        if self.batch_size > self.threshold:
            raise ValueError(f"batch_size {self.batch_size} exceeds threshold {self.threshold}")
        return self


class Role(_Strict):
    model: str = Field(description="torchvision:NAME or file:PATH:FACTORY")
    batch: int = Field(ge=1)
    rate: float | None = Field(None, gt=0, description="requests per second (high role only)")
    image_size: int = Field(224, ge=8)
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

    kernels: int = Field(ge=1)
    ms_per_image: float = Field(ge=0)
    fixed_ms: float = Field(0.0, ge=0)

    def inference_ms(self, batch: int) -> float:
        return self.fixed_ms + self.ms_per_image * batch


def _default_sim_models() -> dict[str, SimKernels]:
    return {
        "torchvision:resnet18": SimKernels(kernels=6, ms_per_image=3.0),
        "torchvision:resnet50": SimKernels(kernels=50, ms_per_image=500.0 / 1024),
    }


class SimSettings(_Strict):
    models: dict[str, SimKernels] = Field(default_factory=_default_sim_models)


class Profile(_Strict):
    name: str
    description: str = ""
    duration_s: float = Field(180.0, gt=0)
    warmup_s: float = Field(5.0, ge=0)
    warmup_iterations: int = Field(3, ge=0)
    drain_s: float = Field(5.0, ge=0, description="after the window, serve issued requests at most this long")
    placement: Placement = "processes"
    sla_ms: float = Field(100.0, gt=0)
    arrival: ArrivalSettings = Field(default_factory=ArrivalSettings)
    tiers: dict[Literal["excellent", "good", "acceptable"], SuccessTier]
    xsched: XSchedGlobal = Field(default_factory=XSchedGlobal)
    high: Role
    low: Role
    sim: SimSettings = Field(default_factory=SimSettings)

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.high.rate is None:
            raise ValueError("high.rate is required (requests per second)")
        if self.low.rate is not None:
            raise ValueError("low.rate makes no sense: the low-priority role runs back to back")
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


# -- loading ------------------------------------------------------------------------------------

def profile_dirs() -> list[Path]:
    """Folders searched for profile names, first match wins."""
    dirs = [Path(p) for p in os.environ.get(PROFILES_ENV, "").split(os.pathsep) if p]
    dirs.append(REPO_PROFILES_DIR)
    return dirs


def _is_path(name_or_path: str) -> bool:
    return name_or_path.endswith(".toml") or os.sep in name_or_path or "/" in name_or_path


def find_profile(name_or_path: str) -> Path:
    """The file of a profile name (searched in ``profile_dirs()``) or path."""
    if _is_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ProfileError(f"profile file {path} does not exist")
        return path
    for folder in profile_dirs():
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for folder in profile_dirs() if folder.is_dir() for p in folder.glob("*.toml")})
    raise ProfileError(f"no profile named {name_or_path!r}",
                       f"known profiles: {', '.join(known) or 'none'}; searched {', '.join(map(str, profile_dirs()))}")


def _location(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _first_error(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return _location(first["loc"]), message


def _validate(raw: dict, source: str) -> Profile:
    try:
        return Profile.model_validate(raw)
    except ValidationError as err:
        key, reason = _first_error(err)
        more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
        hint = None
        if reason == "unknown key":
            hint = f"valid keys here: {', '.join(_valid_keys_at(key.split('.')[:-1]))}"
        raise ProfileError(f"profile {source}: key {key}: {reason}{more}", hint) from None


def load_profile_file(path: Path) -> Profile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ProfileError(f"profile {path}: cannot read ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"profile {path}: not valid TOML ({err})") from None
    raw.setdefault("name", path.stem)
    return _validate(raw, str(path))


def load_profile(name_or_path: str, overrides: list[str] | None = None, duration_s: float | None = None) -> Profile:
    """Find, load and validate a profile, then apply ``--set`` overrides and ``--duration``."""
    profile = load_profile_file(find_profile(name_or_path))
    return apply_overrides(profile, overrides or [], duration_s=duration_s)


def list_profiles() -> list[tuple[str, Path, Profile | ProfileError]]:
    """Every profile found (name, file, the profile or the error loading it); earlier folders shadow later ones."""
    seen: dict[str, Path] = {}
    for folder in profile_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                seen.setdefault(path.stem, path)
    found: list[tuple[str, Path, Profile | ProfileError]] = []
    for name, path in sorted(seen.items()):
        try:
            found.append((name, path, load_profile_file(path)))
        except ProfileError as err:
            found.append((name, path, err))
    return found


# -- overrides ----------------------------------------------------------------------------------

def _split_key(key: str) -> list[str]:
    """Split ``a.b."c:d".e`` into parts; double quotes protect dots inside a part."""
    parts: list[str] = []
    current = ""
    quoted = False
    for char in key:
        if char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    if quoted or any(not part for part in parts):
        raise ProfileError(f"--set {key}: malformed key", 'use dotted names such as low.batch or sim.models."m".kernels')
    return parts


def _model_at(parts: list[str]) -> type[BaseModel] | None:
    """The pydantic model class reached by following ``parts`` from Profile (None inside a dict)."""
    model: Any = Profile
    for part in parts:
        if model is None:
            return None
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif part == "models":  # sim.models: a dict of SimKernels
            model = dict
        elif model is dict:
            model = SimKernels
        else:
            model = None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _valid_keys_at(parts: list[str]) -> list[str]:
    model: Any = Profile
    for part in parts:
        if model is dict:
            model = SimKernels
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        annotation = model.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif part == "models":
            model = dict
        else:
            return []
    if model is dict:
        return ["<model name>"]
    prefix = ".".join(parts)
    return [f"{prefix}.{name}" if prefix else name for name in model.model_fields]


def _parse_value(text: str) -> Any:
    """A TOML literal (``512``, ``0.5``, ``true``, ``"x"``, ``[1, 2]``), else the raw text as a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(profile: Profile, assignments: list[str], duration_s: float | None = None) -> Profile:
    """A new profile with ``KEY=VALUE`` dotted assignments applied (typed and validated by the model)."""
    raw = profile.model_dump(mode="python")
    for assignment in assignments:
        key, sep, value_text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ProfileError(f"--set {assignment!r}: expected KEY=VALUE", "for example --set low.batch=512")
        parts = _split_key(key)
        node: Any = raw
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            inside_dict = depth == 2 and parts[:2] == ["sim", "models"]
            new_entry_field = depth == 3 and parts[:2] == ["sim", "models"] and part in SimKernels.model_fields
            if not isinstance(node, dict) or (part not in node and not inside_dict and not new_entry_field):
                valid = _valid_keys_at(parts[:depth])
                raise ProfileError(f"--set {key}: unknown key {'.'.join(parts[:depth + 1])}",
                                   f"valid keys: {', '.join(valid) or 'none (this is a value, not a table)'}")
            if last:
                if isinstance(node.get(part), dict) and not inside_dict:
                    raise ProfileError(f"--set {key}: is a table, not a value",
                                       f"set one of: {', '.join(_valid_keys_at(parts))}")
                node[part] = _parse_value(value_text.strip())
            else:
                if inside_dict and part not in node:
                    node[part] = {}
                node = node[part]
    if duration_s is not None:
        raw["duration_s"] = duration_s
    try:
        return Profile.model_validate(raw)
    except ValidationError as err:
        where, reason = _first_error(err)
        raise ProfileError(f"profile {profile.name}: override {where}: {reason}",
                           "check the --set / --duration values") from None


def summary_line(profile: Profile) -> str:
    return (f"high {profile.high.model} b{profile.high.batch} @ {profile.high.rate:g} req/s; "
            f"low {profile.low.model} b{profile.low.batch}; {profile.duration_s:g} s, {profile.placement}")
