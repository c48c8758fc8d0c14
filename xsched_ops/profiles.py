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
==============================  ===========================================================

A profile file is read as UTF-8 (at most 1 MiB); anything else is one line naming the file and
the byte offset.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from xsched_ops.errors import ProfileArgumentError, ProfileError
from xsched_ops.xsched.settings import POLICIES

PROFILES_ENV = "XSCHED_OPS_PROFILES"
REPO_PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
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


def _field_at(loc: tuple) -> FieldInfo | None:
    """The model field an error location points at (through nested models and dict values)."""
    model: Any = Profile
    field: FieldInfo | None = None
    skip_key = False
    for part in loc:
        if skip_key:  # a dict's key (a tier name, a sim model name)
            skip_key = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif get_origin(annotation) is dict:
            model = get_args(annotation)[1]
            skip_key = True
        else:
            model = None
    return field


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def allowed_range(loc: tuple) -> str | None:
    """The bounds of the field at ``loc`` as text (``1 <= low.batch <= 65536``), None when it has none."""
    field = _field_at(loc)
    if field is None:
        return None
    lower = upper = ""
    for constraint in field.metadata:
        if getattr(constraint, "gt", None) is not None:
            lower = f"{_number_text(constraint.gt)} < "
        elif getattr(constraint, "ge", None) is not None:
            lower = f"{_number_text(constraint.ge)} <= "
        elif getattr(constraint, "lt", None) is not None:
            upper = f" < {_number_text(constraint.lt)}"
        elif getattr(constraint, "le", None) is not None:
            upper = f" <= {_number_text(constraint.le)}"
    if not lower and not upper:
        return None
    return f"{lower}{_location(loc)}{upper}"


def _shown_value(value: Any) -> str | None:
    """A scalar input as the message shows it (shortened), None for tables and lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = repr(value)
    else:
        return None
    return text if len(text) <= 40 else text[:37] + "..."


def _first_error(err: ValidationError) -> tuple[str, str]:
    """(key, one-line reason) of the first problem: the key, the value given and the allowed range."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = _location(loc)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        return key, "unknown key"
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    value = None if first["type"] == "missing" else _shown_value(first.get("input"))
    allowed = allowed_range(loc)
    text = f"= {value}: {message}" if value is not None else message
    if allowed and "allowed" not in message:
        text += f" (allowed: {allowed})"
    return key, text


def _describe(key: str, reason: str) -> str:
    if key == "(top level)":
        return reason
    return f"key {key} {reason}" if reason.startswith("= ") else f"key {key}: {reason}"


def _validate(raw: dict, source: str) -> Profile:
    try:
        return Profile.model_validate(raw)
    except ValidationError as err:
        key, reason = _first_error(err)
        more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
        hint = None
        if reason == "unknown key":
            hint = f"valid keys here: {', '.join(_valid_keys_at(key.split('.')[:-1]))}"
        raise ProfileError(f"profile {source}: {_describe(key, reason)}{more}", hint) from None


def _read_profile_text(path: Path) -> str:
    """The file as UTF-8 text; one line naming the file (and the byte offset) otherwise."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_PROFILE_BYTES + 1)
    except OSError as err:
        raise ProfileError(f"profile {path}: cannot read ({err.strerror or err})") from None
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(f"profile {path}: larger than {MAX_PROFILE_BYTES} bytes, not a profile")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ProfileError(f"profile {path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}, "
                           f"line {line})", "save the file as UTF-8") from None


def load_profile_file(path: Path) -> Profile:
    text = _read_profile_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"profile {path}: not valid TOML ({err})") from None
    except RecursionError:
        raise ProfileError(f"profile {path}: not valid TOML (nested too deeply)") from None
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
        raise ProfileArgumentError(f"--set {key}: malformed key",
                                   'use dotted names such as low.batch or sim.models."m".kernels')
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
        parsed = tomllib.loads(f"value = {text}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return text
    # "1\nhigh.rate = 5" parses as two keys: the value is then the text, never a second assignment.
    return parsed["value"] if set(parsed) == {"value"} else text


def apply_overrides(profile: Profile, assignments: list[str], duration_s: float | None = None) -> Profile:
    """A new profile with ``KEY=VALUE`` dotted assignments applied (typed and validated by the model)."""
    raw = profile.model_dump(mode="python")
    for assignment in assignments:
        key, sep, value_text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ProfileArgumentError(f"--set {assignment!r}: expected KEY=VALUE", "for example --set low.batch=512")
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
        raise ProfileError(f"profile {profile.name}: override {_describe(where, reason)}",
                           "check the --set / --duration values") from None


def summary_line(profile: Profile) -> str:
    return (f"high {profile.high.model} b{profile.high.batch} @ {profile.high.rate:g} req/s; "
            f"low {profile.low.model} b{profile.low.batch}; {profile.duration_s:g} s, {profile.placement}")
