"""Errors in the words of the profile: the key, the value given, the allowed range; the valid keys of a table."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from xsched_ops.profiles.model import Profile, SimKernels


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
