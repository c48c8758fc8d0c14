"""How glibc's loader splits the variables and files xsched-ops reads and writes (one place for the rule)."""

from __future__ import annotations

import re


def split_path_list(value: str) -> list[str]:
    """LD_LIBRARY_PATH entries as glibc splits them (``:`` or ``;``); empty entries are kept (they mean the cwd)."""
    return re.split(r"[:;]", value) if value else []


def split_preload(value: str) -> list[str]:
    """LD_PRELOAD entries as glibc 2.36 splits them: on spaces and colons only (a tab is part of a name)."""
    return [entry for entry in re.split(r"[ :]+", value) if entry]


def split_ld_so_preload(text: str) -> list[str]:
    """/etc/ld.so.preload entries as glibc splits the file: on colons, spaces, tabs and newlines."""
    return [entry for entry in re.split(r"[: \t\n]+", text) if entry]
