"""``--set KEY=VALUE`` overrides: dotted keys, TOML literals, validated by the model."""

from __future__ import annotations

import tomllib
from typing import Any

from pydantic import ValidationError

from xsched_ops.errors import ProfileArgumentError, ProfileError
from xsched_ops.profiles.model import Profile, SimKernels
from xsched_ops.profiles.schema import _describe, _first_error, _valid_keys_at


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
