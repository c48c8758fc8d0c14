"""The XSched-like install, the scenario table and the image recipe, without Docker.

The libraries are checked with pyelftools and with this host's real loader (the host is Debian
like the image), so a broken build or a scenario that points at a missing file fails here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

from xsched_ops.errors import SandboxError, UsageError
from xsched_ops.sandbox import image, install, scenarios
from xsched_ops.sandbox.scenarios import SCENARIOS, TYPEINFO_SYMBOL, VTABLE_SYMBOL, CheckId


@pytest.fixture(scope="module")
def build() -> install.InstallBuild:
    return install.ensure_install()


def dynamic_tags(path: Path, tag: str) -> list[str]:
    with open(path, "rb") as handle:
        elf = ELFFile(handle)
        section = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
        attribute = {"DT_NEEDED": "needed", "DT_RUNPATH": "runpath", "DT_SONAME": "soname"}[tag]
        return [getattr(t, attribute) for t in section.iter_tags() if t.entry.d_tag == tag]


def defined_symbols(path: Path) -> set[str]:
    with open(path, "rb") as handle:
        elf = ELFFile(handle)
        table = elf.get_section_by_name(".dynsym")
        return {s.name for s in table.iter_symbols() if s.entry.st_shndx != "SHN_UNDEF"}


def undefined_symbols(path: Path) -> set[str]:
    with open(path, "rb") as handle:
        elf = ELFFile(handle)
        table = elf.get_section_by_name(".dynsym")
        return {s.name for s in table.iter_symbols() if s.name and s.entry.st_shndx == "SHN_UNDEF"}


def version_names(path: Path, kind: type) -> set[str]:
    with open(path, "rb") as handle:
        elf = ELFFile(handle)
        names: set[str] = set()
        for section in elf.iter_sections():
            if isinstance(section, kind) and kind is GNUVerDefSection:
                names |= {next(aux).name for _verdef, aux in section.iter_versions()}
            elif isinstance(section, kind):
                for _verneed, auxes in section.iter_versions():
                    names |= {aux.name for aux in auxes}
        return names


def test_install_layout(build: install.InstallBuild) -> None:
    lib = build.install / "lib"
    for name in ("libpreempt.so", "libhalhip.so", "libshimhip.so"):
        assert (lib / name).is_file(), name
    for link in ("libamdhip64.so", "libamdhip64.so.1"):
        assert os.readlink(lib / link) == "libshimhip.so"
    assert os.access(build.install / "bin" / "xserver", os.X_OK)
    version_file = (lib / "cmake" / "XSched" / "XSchedConfigVersion.cmake").read_text()
    assert 'set(PACKAGE_VERSION "1.2.0")' in version_file


def test_shim_links_hal_and_preempt_with_runpath(build: install.InstallBuild) -> None:
    shim = build.install / "lib" / "libshimhip.so"
    needed = dynamic_tags(shim, "DT_NEEDED")
    assert "libhalhip.so" in needed and "libpreempt.so" in needed
    assert dynamic_tags(shim, "DT_RUNPATH") == [scenarios.LIB]
    assert dynamic_tags(build.install / "lib" / "libhalhip.so", "DT_SONAME") == ["libhalhip.so"]
    assert {TYPEINFO_SYMBOL, VTABLE_SYMBOL} <= undefined_symbols(shim)
    assert {"hipMalloc", "hipLaunchKernel", "hipStreamCreate", "hipDeviceSynchronize"} <= defined_symbols(shim)


def test_hal_variants(build: install.InstallBuild) -> None:
    good = defined_symbols(build.install / "lib" / "libhalhip.so")
    assert {TYPEINFO_SYMBOL, VTABLE_SYMBOL} <= good
    old = build.path("variants/hal-old/libhalhip.so")
    assert dynamic_tags(old, "DT_SONAME") == ["libhalhip.so"]
    assert TYPEINFO_SYMBOL not in defined_symbols(old)
    assert "xsched_hal_hip_init" in defined_symbols(old)
    assert "libhalhip.so" not in dynamic_tags(build.path("variants/shim-underlinked/libshimhip.so"), "DT_NEEDED")


def test_versioned_variants(build: install.InstallBuild) -> None:
    assert version_names(build.path("variants/versioned/libhalhip.so"), GNUVerDefSection) >= {"XSCHED_1.0", "XSCHED_1.2"}
    old = version_names(build.path("variants/hal-v1.0/libhalhip.so"), GNUVerDefSection)
    assert "XSCHED_1.0" in old and "XSCHED_1.2" not in old
    assert "XSCHED_1.2" in version_names(build.path("variants/versioned/libshimhip.so"), GNUVerNeedSection)


def test_build_is_cached(build: install.InstallBuild) -> None:
    started = time.monotonic()
    again = install.ensure_install()
    assert again.root == build.root and not again.built_now
    assert time.monotonic() - started < 1.0


def run_python_with(preload: Path, library_path: list[Path]) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_PRELOAD": str(preload),
                   "LD_LIBRARY_PATH": ":".join(str(p) for p in library_path)}
    return subprocess.run(["/usr/bin/python3", "-c", "print('loaded')"], env=environment, capture_output=True,
                          text=True, timeout=60, check=False)


def test_host_loader_accepts_good_install(build: install.InstallBuild) -> None:
    lib = build.install / "lib"
    result = run_python_with(lib / "libshimhip.so", [lib])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded"


def test_host_loader_rejects_stale_hal_first(build: install.InstallBuild) -> None:
    lib = build.install / "lib"
    result = run_python_with(lib / "libshimhip.so", [build.path("variants/hal-old"), lib])
    assert result.returncode != 0
    assert f"libshimhip.so: undefined symbol: {TYPEINFO_SYMBOL}" in result.stderr


def test_host_loader_rejects_old_symbol_version(build: install.InstallBuild) -> None:
    lib = build.install / "lib"
    versioned = build.path("variants/versioned")
    result = run_python_with(versioned / "libshimhip.so", [build.path("variants/hal-v1.0"), versioned, lib])
    assert result.returncode != 0
    assert "version `XSCHED_1.2' not found" in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("argv", [["GBL", "50000"], ["HPF", "notaport"], ["HPF"]])
def test_xserver_refuses_bad_arguments(build: install.InstallBuild, argv: list[str]) -> None:
    result = subprocess.run([str(build.install / "bin" / "xserver"), *argv], capture_output=True, text=True,
                            timeout=10, check=False)
    assert result.returncode == 2
    assert result.stderr.strip()


# -- the scenario table -----------------------------------------------------------------------

KNOWN_CHECKS = {value for key, value in vars(CheckId).items() if key.isupper()}


def test_issue_scenarios_are_registered() -> None:
    assert set(SCENARIOS) >= {"ok", "seed", "underlinked", "missing-hal", "preload-typo", "softlink-recursion",
                              "version-mismatch", "policy-local", "stale-ipc", "no-gpu"}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_entry_is_consistent(name: str, build: install.InstallBuild) -> None:
    scenario = SCENARIOS[name]
    assert scenario.name == name and scenario.description
    for placement in scenario.placements:
        assert build.path(placement.source).is_file(), placement.source
        assert placement.destination.startswith("/")
    for finding in scenario.expected_findings():
        assert finding.check in KNOWN_CHECKS
        assert finding.severity in ("ok", "warn", "fail")
    if scenario.alias_of is not None:
        assert scenario.alias_of in SCENARIOS
    if not scenario.loader.succeeds:
        # A scenario whose loader fails must say which check explains it.
        assert any(f.check == CheckId.SHIM_LOADS for f in scenario.expected)
    assert scenario.expected_findings()[-1].check == CheckId.GPU


def test_probe_environment_layers_on_container_env() -> None:
    container_env = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/a"}
    seed = scenarios.get("seed").probe_env(container_env)
    assert seed == {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/a", "LD_PRELOAD": scenarios.SHIM}
    typo = scenarios.get("preload-typo").probe_env({"LD_PRELOAD": "/x.so"})
    assert typo == {"LD_PRELOAD": "/x.so"}


def test_unknown_scenario_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        scenarios.get("sed")
    assert "seed" in caught.value.one_line()


# -- the image recipe -------------------------------------------------------------------------

def test_image_tag_covers_the_package_list(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = image.image_tag()
    assert tag.startswith("xsched-ops-sandbox:")
    monkeypatch.setattr(image, "PACKAGES", (*image.PACKAGES, "strace"))
    assert image.image_tag() != tag
    monkeypatch.setattr(image, "SUITE", "trixie")
    assert image.image_tag() != tag


def test_missing_debootstrap_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError) as caught:
        image.require_debootstrap()
    assert "apt-get install debootstrap" in caught.value.one_line()


def test_sources_are_found() -> None:
    assert (install.sources_dir() / "build.sh").is_file()
