"""The XSched platform table (xsched/platforms.toml), validated on load.

One source of truth for every platform-specific file name, device node and variable.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Debian multiarch default library folders, in the order glibc searches them (ld.so.conf aside).
SYSTEM_LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")


class CommonLayout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    preempt_lib: str
    xserver: str
    xcli: str
    version_file: str
    seed_prefix: str
    common_prefixes: list[str]
    ipc_shm_glob: str
    ipc_sysv_key: str
    default_port: int
    # The folders XSched's HAL searches for the real runtime (after the variable and the
    # platform's own folders), exactly as XSched spells them: see xsched_ops.xsched.hal_lookup.
    hal_default_dirs: list[str]


class Platform(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = ""
    display: str
    shim: str
    hal: str
    softlinks: list[str] = Field(min_length=1)
    runtime_libs: list[str] = Field(min_length=1)
    runtime_search_dirs: list[str]
    runtime_lib_env: str
    device_nodes: list[str]
    # Glob patterns of device nodes the in-target probe lists; version files and packages it reads.
    device_globs: list[str] = Field(default_factory=list)
    runtime_version_files: list[str] = Field(default_factory=list)
    runtime_version_packages: list[str] = Field(default_factory=list)
    docker_run_flags: list[str]
    default_route: Literal["preload", "libpath"]
    torch_version_attr: str
    hal_marker_symbol: str
    # The name an application loads the runtime by (one of the softlinks, so that route libpath
    # gives it the shim) and the runtime's first entry point, which takes one flags argument.
    application_soname: str
    init_symbol: str
    # XSched's HAL (FindLibrary): the platform's own folders, searched before
    # common.hal_default_dirs, and the file names it tries in each (see xsched_ops.xsched.hal_lookup).
    hal_search_dirs: list[str]
    hal_search_names: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _application_soname_is_a_softlink(self) -> Platform:
        if self.application_soname not in self.softlinks:
            raise ValueError(f"application_soname {self.application_soname!r} must be one of the softlinks "
                             f"{self.softlinks}: route libpath reaches the shim only through them")
        return self


class PlatformTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    common: CommonLayout
    platforms: dict[str, Platform]


@cache
def table() -> PlatformTable:
    raw = tomllib.loads(resources.files("xsched_ops.xsched").joinpath("platforms.toml").read_text())
    for name, entry in raw.get("platforms", {}).items():
        entry["name"] = name
    return PlatformTable.model_validate(raw)


def common() -> CommonLayout:
    return table().common


def get(name: str) -> Platform:
    platforms = table().platforms
    if name not in platforms:
        from xsched_ops.errors import UsageError

        raise UsageError(f"unknown platform {name!r}", f"choose one of: {', '.join(sorted(platforms))}")
    return platforms[name]


def all_platforms() -> list[Platform]:
    return list(table().platforms.values())


def probe_facts_spec() -> dict[str, list[str]]:
    """What the in-target probe looks for, from every platform of the table (sent to it as JSON)."""
    spec: dict[str, list[str]] = {"device_globs": [], "runtime_version_files": [], "runtime_version_packages": []}
    for platform in all_platforms():
        for key in spec:
            for value in getattr(platform, key):
                if value not in spec[key]:
                    spec[key].append(value)
    return spec
