"""How glibc's loader splits the variables xsched-ops reads and writes (one place for the rule)."""

from __future__ import annotations

import re


def split_path_list(value: str) -> list[str]:
    """LD_LIBRARY_PATH entries as glibc splits them (``:`` or ``;``); empty entries are kept (they mean the cwd)."""
    return re.split(r"[:;]", value) if value else []


def split_preload(value: str) -> list[str]:
    """LD_PRELOAD entries as glibc splits them (spaces or colons)."""
    return [entry for entry in re.split(r"[:\s]+", value) if entry]
