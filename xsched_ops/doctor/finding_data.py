"""The data a finding carries, one typed model per kind of finding.

A reader names fields (``finding.data.loaded_provider``) and the type checker sees them. Every model
keeps its JSON shape: a finding's ``data`` is written with the fields its maker set (so a key that a
kind carries only sometimes, such as the first symbol of a missing library's finding, is absent rather
than null), in the order they are declared. Kinds not typed yet use ``FindingData`` with named extra
keys; all kinds can also be read by key (``data["path"]``), for the tests and scripts that do.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class FindingData(BaseModel):
    """What a finding says beyond its title; the base of every kind (extra keys: kinds not typed yet)."""

    model_config = ConfigDict(extra="allow")

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: the fields set by the finding's maker, nested models as dicts."""
        return self.model_dump(exclude_unset=True)

    # Read by key, as a dict is (the JSON form's keys).
    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.as_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.as_dict()

    def keys(self) -> list[str]:
        return list(self.as_dict())


class SymbolEntry(BaseModel):
    """One undefined symbol inside a grouped loader finding."""

    symbol: str
    demangled: str
    version: str | None
    when: str  # "startup" (the process dies before main) or "lazy" (at the first call)
    loader_message: str


class XSchedLibrary(BaseModel):
    """One XSched library loaded for the shim and where it came from (mixed builds)."""

    library: str
    path: str
    folder: str
    reached_by: str
    search_path: list[str]
    built_for: list[str]  # RUNPATH/RPATH entries naming another XSched lib folder than where it lies


class _MixedBuilds(FindingData):
    xsched_libraries: list[XSchedLibrary] = []
    mixed_builds: bool = False


class UndefinedSymbolsData(_MixedBuilds):
    """shim-loads: symbols of one object that no loaded object defines, grouped by (needing object,
    loaded provider, expected provider)."""

    symbol: str | None = None
    demangled: str | None = None
    needed_by: str | None = None
    version: str | None = None
    when: str | None = None
    loaded_provider: str | None = None
    loaded_provider_reason: str | None = None
    expected_provider: str | None = None
    expected_provider_reason: str | None = None
    loader_message: str | None = None
    symbols: list[SymbolEntry] = []


class VersionMismatchData(_MixedBuilds):
    """shim-loads: symbol versions a loaded copy does not define (and the symbols undefined with them)."""

    version: str | None = None
    versions: list[str] = []
    needed_by: str | None = None
    loaded_provider: str | None = None
    loaded_provider_reason: str | None = None
    expected_provider: str | None = None
    symbol: str | None = None
    demangled: str | None = None
    symbols: list[SymbolEntry] = []


class MissingLibraryData(FindingData):
    """shim-loads: DT_NEEDED entries of one object that the loader does not find."""

    needed: str | None = None
    needed_libraries: list[str] = []
    needed_by: str | None = None
    expected_provider: str | None = None
    expected_providers: list[str | None] = []
    tried: list[str] = []
    tried_by_library: dict[str, list[str]] = {}
    symbol: str | None = None
    demangled: str | None = None
    symbols: list[SymbolEntry] = []


class ShimLoadsData(_MixedBuilds):
    """shim-loads when everything resolves."""

    objects: int | None = None


class DuplicateData(FindingData):
    """duplicates: copies of an XSched library on the search folders."""

    copies: list[str] = []
    loaded_provider: str | None = None
    loaded_provider_reason: str | None = None
    expected_provider: str | None = None
    lacking: list[str] = []


class GroundTruthData(FindingData):
    """ground-truth: the model's verdict beside the real loader's."""

    model_would_start: bool | None = None
    model_shim_loaded: bool | None = None
    real: dict[str, Any] | None = None
    model_fatal_error: str | None = None


class GroundTruthFixedData(FindingData):
    """ground-truth.fixed: a real load with the computed environment."""

    real: dict[str, Any] | None = None
    real_runtime: str | None = None


class EngineData(FindingData):
    """engine: the engine and the container it answered for."""

    engine: str | None = None
    api_version: str | None = None
    container: str | None = None
    image: str | None = None


class GpuData(FindingData):
    """gpu: the device nodes the platform needs and the target lacks."""

    missing: list[str] = []
    path: str | None = None  # the first missing node
    platform: str | None = None


class InstallData(FindingData):
    """install: what is missing from the install, or where it is (``XSchedInstall.as_dict``)."""

    missing: list[str] = []
    path: str | None = None
    prefix: str | None = None
    platform: str | None = None
    version: str | None = None
    found_by: str | None = None
    lib_dir: str | None = None
    shim: str | None = None
    hal: str | None = None
    preempt: str | None = None
    xserver: str | None = None
    softlinks: list[str] = []


class PreloadData(FindingData):
    """preload: an LD_PRELOAD entry that does not exist, and the shim to use instead."""

    entry: str | None = None
    path: str | None = None
    suggested: str | None = None


class RuntimeLibData(FindingData):
    """runtime-lib: the file XSched's HAL really opens as the real runtime, and how it found it."""

    path: str | None = None
    variable: str | None = None
    value: str | None = None
    hal_runtime: str | None = None
    found_by: str | None = None
    tried: list[str] = []
    warnings: list[str] = []
    real_runtime: str | None = None


class SettingData(FindingData):
    """settings: one XSCHED_* variable and what XSched does with it."""

    variable: str | None = None
    value: str | None = None
    path: str | None = None  # the variable's name
    scheduler: str | None = None  # the scheduler the process really gets


class XserverPortData(FindingData):
    """xserver.port: the xserver's port, taken by another program."""

    port: int | None = None


class IpcData(FindingData):
    """ipc: stale XSched IPC state with no xserver to own it."""

    files: list[str] = []
    path: str | None = None
    server_queue_stale: bool | None = None
    sysv_key_present: bool | None = None
    stale_client_queues: list[str] = []


class MpsData(FindingData):
    """mps: NVIDIA MPS in the target."""

    compute_mode: str | None = None
    control: str | None = None
    daemons: list[str] = []
