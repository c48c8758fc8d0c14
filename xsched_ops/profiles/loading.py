"""Finding, reading and validating profile files."""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from xsched_ops.errors import ProfileError
from xsched_ops.profiles import model
from xsched_ops.profiles.model import MAX_PROFILE_BYTES, MAX_SWEEP_CELLS, PROFILES_ENV, Profile
from xsched_ops.profiles.overrides import apply_overrides
from xsched_ops.profiles.schema import _describe, _first_error, _valid_keys_at


def profile_dirs() -> list[Path]:
    """Folders searched for profile names, first match wins."""
    dirs = [Path(p) for p in os.environ.get(PROFILES_ENV, "").split(os.pathsep) if p]
    dirs.append(model.REPO_PROFILES_DIR)
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
    return check_sweep_grid(_validate(raw, str(path)), str(path))


def grid_literal(value: object) -> str:
    """A grid value as the TOML literal ``--set`` parses back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def check_sweep_grid(profile: Profile, source: str) -> Profile:
    """Every cell of ``[sweep.grid]`` is a profile the sweep can run: one line naming the key otherwise."""
    grid = profile.sweep.grid
    cells = math.prod(len(values) for values in grid.values()) if grid else 0
    if cells > MAX_SWEEP_CELLS:
        raise ProfileError(f"profile {source}: key sweep.grid has {cells} cells; allowed: at most {MAX_SWEEP_CELLS}",
                           "give fewer values")
    for combination in itertools.product(*grid.values()) if grid else ():
        assignments = [f"{key}={grid_literal(value)}" for key, value in zip(grid, combination, strict=True)]
        try:
            apply_overrides(profile, assignments)
        except ProfileError as err:
            detail = err.message.split(": ", 1)[-1] if err.message.startswith("profile ") else err.message
            where = f"sweep.grid.{assignments[0].split('=')[0]}" if len(grid) == 1 else "sweep.grid"
            raise ProfileError(f"profile {source}: key {where}: the cell {', '.join(assignments)} is refused "
                               f"({detail.removeprefix('override ')})",
                               "give values the profile accepts together") from None
    return profile


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


def summary_line(profile: Profile) -> str:
    return (f"high {profile.high.model} b{profile.high.batch} @ {profile.high.rate:g} req/s; "
            f"low {profile.low.model} b{profile.low.batch}; {profile.duration_s:g} s, {profile.placement}")
