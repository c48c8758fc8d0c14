"""C++ symbol demangling: ``c++filt`` in one batch when the host has it, else a small built-in.

The built-in covers what the loader reports care about most: ``typeinfo for``, ``typeinfo name
for``, ``vtable for``, ``VTT for`` and ``construction vtable`` prefixes of (nested) class names,
and plain nested names such as ``_ZN6xsched3hip10HipCommandD2Ev`` (read without parameters).
Anything else it cannot read is returned unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

_SPECIAL_PREFIXES = {
    "_ZTI": "typeinfo for ",
    "_ZTS": "typeinfo name for ",
    "_ZTV": "vtable for ",
    "_ZTT": "VTT for ",
}
_STANDARD_SUBSTITUTIONS = {"St": "std", "Sa": "std::allocator", "Sb": "std::basic_string", "Ss": "std::string"}


def demangle_many(names: Iterable[str], use_cxxfilt: bool = True) -> dict[str, str]:
    """Map each name to its demangled form (the name itself when it is not mangled)."""
    unique = sorted({name for name in names})
    result = {name: name for name in unique}
    mangled = [name for name in unique if name.startswith("_Z")]
    if not mangled:
        return result
    cxxfilt = shutil.which("c++filt") if use_cxxfilt else None
    if cxxfilt:
        try:
            completed = subprocess.run([cxxfilt], input="\n".join(mangled) + "\n", capture_output=True,
                                       text=True, timeout=30, check=True)
            lines = completed.stdout.splitlines()
            if len(lines) == len(mangled):
                result.update(zip(mangled, lines, strict=True))
                return result
        except (OSError, subprocess.SubprocessError):
            pass
    for name in mangled:
        result[name] = demangle_builtin(name)
    return result


def demangle(name: str) -> str:
    return demangle_many([name])[name]


def demangle_builtin(name: str) -> str:
    """The small fallback demangler; returns ``name`` unchanged when it cannot read it."""
    for prefix, words in _SPECIAL_PREFIXES.items():
        if name.startswith(prefix):
            parsed = _parse_name(name, len(prefix))
            if parsed is not None and parsed[1] == len(name):
                return words + parsed[0]
            return name
    if name.startswith("_Z"):
        parsed = _parse_name(name, 2)
        if parsed is not None:
            text, end = parsed
            return text if end == len(name) else text + "(...)"
    return name


def _parse_name(text: str, position: int) -> tuple[str, int] | None:
    """Parse an <unscoped-name> or an <N ... E> nested name; return (text, end)."""
    if text.startswith("N", position):
        position += 1
        parts: list[str] = []
        while position < len(text) and text[position] in "KVrRO":  # cv- and ref-qualifiers
            position += 1
        while position < len(text) and text[position] != "E":
            parsed = _parse_component(text, position, parts)
            if parsed is None:
                return None
            part, position = parsed
            parts.append(part)
        if position >= len(text):
            return None
        return "::".join(parts), position + 1
    parsed = _parse_component(text, position, [])
    if parsed is None:
        return None
    return parsed


def _parse_component(text: str, position: int, previous: list[str]) -> tuple[str, int] | None:
    substitution = text[position:position + 2]
    if substitution in _STANDARD_SUBSTITUTIONS:
        return _STANDARD_SUBSTITUTIONS[substitution], position + 2
    if text.startswith("C1", position) or text.startswith("C2", position):
        return (previous[-1] if previous else "?"), position + 2
    if text.startswith(("D0", "D1", "D2"), position):
        return "~" + (previous[-1] if previous else "?"), position + 2
    digits_end = position
    while digits_end < len(text) and text[digits_end].isdigit():
        digits_end += 1
    if digits_end == position:
        return None
    length = int(text[position:digits_end])
    end = digits_end + length
    if end > len(text):
        return None
    return text[digits_end:end], end
