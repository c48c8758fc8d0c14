"""The HAL's own search for the real runtime (XSCHED-FACTS section 6) and the runtime-lib finding."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from xsched_ops.doctor.checks_target import check_runtime_lib
from xsched_ops.target.fs import RootedFS
from xsched_ops.xsched import platforms
from xsched_ops.xsched.hal_lookup import hal_runtime_lookup
from xsched_ops.xsched.install import XSchedInstall

PREFIX = "/data/dockercode/xsched-build/output"
CUDA = platforms.get("cuda")
HIP = platforms.get("hip")
NVIDIA_DRIVER = "/usr/local/nvidia/lib64/libcuda.so.1"


def tree_fs(tmp_path: Path, files: tuple[str, ...] = (), links: dict[str, str] | None = None) -> RootedFS:
    """A temporary tree with these regular files and symbolic links (path -> target), read through RootedFS.

    A relative path names nothing in the tree (the lookup counts a relative value as missing)."""
    root = Path(tempfile.mkdtemp(dir=tmp_path, prefix="tree-"))
    for path in files:
        if path.startswith("/"):
            host = root / path.lstrip("/")
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_bytes(b"\x7fELF")
    for path, target in (links or {}).items():
        host = root / path.lstrip("/")
        host.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, host)
    return RootedFS(str(root))


def cuda_install(prefix: str = PREFIX) -> XSchedInstall:
    return XSchedInstall(prefix=prefix, platform=CUDA, version="1.2.0", found_by="test")


def cuda_fs(tmp_path: Path, *files: str, prefix: str = PREFIX) -> RootedFS:
    lib = f"{prefix}/lib"
    return tree_fs(tmp_path, (f"{lib}/{CUDA.shim}", *files),
                   {f"{lib}/{name}": CUDA.shim for name in CUDA.softlinks})


def context(fs: RootedFS, env: dict[str, str], real: str | None, install: XSchedInstall | None = None) -> Any:
    return SimpleNamespace(install=install or cuda_install(), environment=env, fs=fs,
                           fixed_environment=SimpleNamespace(real_runtime=real))


# -- the lookup itself ----------------------------------------------------------------------------

def test_the_table_holds_xsched_s_folders_and_names_as_xsched_spells_them() -> None:
    assert platforms.common().hal_default_dirs == [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/local/libx86_64-linux-gnu",
        "/lib/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib"]
    assert CUDA.hal_search_dirs == [] and CUDA.hal_search_names == ["libcuda.so", "libcuda.so.1"]
    assert HIP.hal_search_dirs == ["/opt/rocm/lib"]
    assert HIP.hal_search_names[0] == "libamdhip64.so"


def test_an_existing_variable_wins_without_any_search(tmp_path: Path) -> None:
    fs = tree_fs(tmp_path, ("/opt/driver/libcuda.so.1", "/lib/x86_64-linux-gnu/libcuda.so"))
    lookup = hal_runtime_lookup(CUDA, {"XSCHED_CUDA_LIB": "/opt/driver/libcuda.so.1"}, fs)
    assert (lookup.path, lookup.found_by, lookup.warnings) == ("/opt/driver/libcuda.so.1", "variable", ())
    assert lookup.tried == ("/opt/driver/libcuda.so.1",)


def test_a_missing_variable_warns_as_xsched_does_and_falls_back_to_the_folders(tmp_path: Path) -> None:
    fs = tree_fs(tmp_path, ("/usr/lib/x86_64-linux-gnu/libcuda.so.1",))
    lookup = hal_runtime_lookup(CUDA, {"XSCHED_CUDA_LIB": "/nonexistent/libcuda.so.1"}, fs)
    assert lookup.warnings == (
        "lib set by env XSCHED_CUDA_LIB = /nonexistent/libcuda.so.1 not found, fallback to dir search",)
    assert (lookup.path, lookup.found_by) == ("/usr/lib/x86_64-linux-gnu/libcuda.so.1", "system folder")
    assert lookup.tried[0] == "/nonexistent/libcuda.so.1"


def test_a_link_to_the_runtime_is_opened_as_spelled_and_resolved_through_the_tree(tmp_path: Path) -> None:
    fs = tree_fs(tmp_path, ("/opt/rocm-6.1/lib/libamdhip64.so.6",),
                 {"/opt/rocm": "rocm-6.1", "/opt/rocm-6.1/lib/libamdhip64.so": "libamdhip64.so.6"})
    lookup = hal_runtime_lookup(HIP, {}, fs)
    assert (lookup.path, lookup.resolved) == ("/opt/rocm/lib/libamdhip64.so", "/opt/rocm-6.1/lib/libamdhip64.so.6")
    # A dangling link is no file: the search goes on.
    os.remove(Path(fs.root, "opt/rocm-6.1/lib/libamdhip64.so.6"))
    assert hal_runtime_lookup(HIP, {}, fs).path is None


def test_an_empty_variable_counts_as_set(tmp_path: Path) -> None:
    lookup = hal_runtime_lookup(CUDA, {"XSCHED_CUDA_LIB": ""}, tree_fs(tmp_path, ("/usr/lib64/libcuda.so",)))
    assert lookup.warnings == ("lib set by env XSCHED_CUDA_LIB =  not found, fallback to dir search",)
    assert lookup.path == "/usr/lib64//libcuda.so" and lookup.resolved == "/usr/lib64/libcuda.so"


def test_hip_looks_in_opt_rocm_lib_before_the_system_folders(tmp_path: Path) -> None:
    fs = tree_fs(tmp_path, ("/opt/rocm/lib/libamdhip64.so", "/lib/x86_64-linux-gnu/libamdhip64.so"))
    lookup = hal_runtime_lookup(HIP, {}, fs)
    assert (lookup.path, lookup.found_by) == ("/opt/rocm/lib/libamdhip64.so", "platform folder")
    assert lookup.tried == ("/opt/rocm/lib/libamdhip64.so",)


def test_hip_debian_runtime_is_found_by_its_versioned_name(tmp_path: Path) -> None:
    fs = tree_fs(tmp_path, ("/usr/lib/x86_64-linux-gnu/libamdhip64.so.5",))
    lookup = hal_runtime_lookup(HIP, {}, fs)
    assert (lookup.path, lookup.found_by) == ("/usr/lib/x86_64-linux-gnu/libamdhip64.so.5", "system folder")
    assert lookup.tried[:len(HIP.hal_search_names)] == tuple(f"/opt/rocm/lib/{n}" for n in HIP.hal_search_names)


def test_cuda_has_no_folder_of_its_own(tmp_path: Path) -> None:
    lookup = hal_runtime_lookup(CUDA, {}, tree_fs(tmp_path, ("/opt/rocm/lib/libcuda.so",)))
    assert lookup.path is None
    assert lookup.tried[0] == "/lib/x86_64-linux-gnu/libcuda.so"


def test_folder_order_comes_before_name_order(tmp_path: Path) -> None:
    # libcuda.so.1 in the first folder beats libcuda.so in the second; in one folder, libcuda.so first.
    fs = tree_fs(tmp_path, ("/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so"))
    assert hal_runtime_lookup(CUDA, {}, fs).path == "/lib/x86_64-linux-gnu/libcuda.so.1"
    fs = tree_fs(tmp_path, ("/lib/x86_64-linux-gnu/libcuda.so.1", "/lib/x86_64-linux-gnu/libcuda.so"))
    assert hal_runtime_lookup(CUDA, {}, fs).path == "/lib/x86_64-linux-gnu/libcuda.so"


def test_the_misspelled_folder_never_matches_the_real_multiarch_folder(tmp_path: Path) -> None:
    fs = tree_fs(tmp_path, ("/usr/local/lib/x86_64-linux-gnu/libcuda.so.1",))
    lookup = hal_runtime_lookup(CUDA, {}, fs)
    assert lookup.path is None
    assert "/usr/local/libx86_64-linux-gnu/libcuda.so.1" in lookup.tried
    assert not any(path.startswith("/usr/local/lib/x86_64-linux-gnu") for path in lookup.tried)


def test_the_lib_entry_is_chosen_and_ld_library_path_and_the_nvidia_folder_never_searched(tmp_path: Path) -> None:
    # The H200 host: the driver in /usr/local/nvidia/lib64 (what ld.so.cache answers), a copy in /lib.
    fs = tree_fs(tmp_path, (NVIDIA_DRIVER, "/lib/libcuda.so.1"))
    env = {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib64"}
    lookup = hal_runtime_lookup(CUDA, env, fs)
    assert (lookup.path, lookup.found_by, lookup.resolved) == ("/lib//libcuda.so.1", "system folder",
                                                               "/lib/libcuda.so.1")
    assert not any("nvidia" in path for path in lookup.tried)
    # Without the copy the HAL finds nothing at all.
    lookup = hal_runtime_lookup(CUDA, env, tree_fs(tmp_path, (NVIDIA_DRIVER,)))
    assert lookup.path is None and not any("nvidia" in path for path in lookup.tried)


def test_nothing_found_warns_for_each_name_and_lists_every_path_tried(tmp_path: Path) -> None:
    lookup = hal_runtime_lookup(CUDA, {}, tree_fs(tmp_path))
    assert (lookup.path, lookup.found_by, lookup.resolved) == (None, None, None)
    assert lookup.warnings == ("lib libcuda.so not found", "lib libcuda.so.1 not found")
    dirs = platforms.common().hal_default_dirs
    assert lookup.tried == tuple(d + "/" + n for d in dirs for n in CUDA.hal_search_names)


def test_a_relative_variable_counts_as_missing(tmp_path: Path) -> None:
    # Resolved against the process's working directory, which the doctor does not know.
    fs = tree_fs(tmp_path, ("/usr/lib/libcuda.so.1", "libcuda.so.1"))
    lookup = hal_runtime_lookup(CUDA, {"XSCHED_CUDA_LIB": "libcuda.so.1"}, fs)
    assert lookup.warnings[0].startswith("lib set by env XSCHED_CUDA_LIB = libcuda.so.1 not found")
    assert lookup.path == "/usr/lib//libcuda.so.1"


# -- the runtime-lib finding ------------------------------------------------------------------------

def _one(findings: list, severity: str) -> Any:
    assert [f.severity for f in findings] == [severity], [(f.severity, f.title) for f in findings]
    assert all(f.id == "runtime-lib" for f in findings)
    return findings[0]


def test_finding_variable_at_the_shim_softlink_is_the_sigsegv_recursion(tmp_path: Path) -> None:
    softlink = f"{PREFIX}/lib/libcuda.so.1"
    finding = _one(check_runtime_lib(context(cuda_fs(tmp_path, NVIDIA_DRIVER), {"XSCHED_CUDA_LIB": softlink},
                                             NVIDIA_DRIVER)), "fail")
    assert finding.title.startswith(f"XSCHED_CUDA_LIB={softlink}")
    assert "SIGSEGV (exit -11)" in finding.detail and "no message" in finding.detail
    assert "calls itself until the stack overflows" in finding.detail
    assert finding.commands == [f"export XSCHED_CUDA_LIB={NVIDIA_DRIVER}"]
    assert finding.data["path"] == softlink and finding.data["value"] == softlink
    assert finding.data["hal_runtime"] == softlink and finding.data["real_runtime"] == NVIDIA_DRIVER
    assert finding.data["tried"] == [softlink]


def test_finding_variable_at_a_real_file_is_ok(tmp_path: Path) -> None:
    finding = _one(check_runtime_lib(context(cuda_fs(tmp_path, NVIDIA_DRIVER), {"XSCHED_CUDA_LIB": NVIDIA_DRIVER},
                                             NVIDIA_DRIVER)), "ok")
    assert f"the HAL opens {NVIDIA_DRIVER}" in finding.title and "XSCHED_CUDA_LIB" in finding.title
    assert finding.data["hal_runtime"] == NVIDIA_DRIVER and finding.data["found_by"] == "variable"


def test_finding_missing_variable_is_a_warning_naming_the_fallback_pick(tmp_path: Path) -> None:
    fs = cuda_fs(tmp_path, NVIDIA_DRIVER, "/lib/libcuda.so.1")
    finding = _one(check_runtime_lib(context(fs, {"XSCHED_CUDA_LIB": "/gone/libcuda.so.1"}, NVIDIA_DRIVER)), "warn")
    assert "fallback to dir search" in finding.detail
    assert "the HAL opens /lib//libcuda.so.1 (-> /lib/libcuda.so.1)" in finding.detail
    assert finding.data["hal_runtime"] == "/lib//libcuda.so.1" and finding.data["path"] == "/gone/libcuda.so.1"


def test_finding_missing_variable_and_nothing_in_the_folders_adds_the_failure(tmp_path: Path) -> None:
    findings = check_runtime_lib(context(cuda_fs(tmp_path, NVIDIA_DRIVER), {"XSCHED_CUDA_LIB": "/gone/libcuda.so.1"},
                                         NVIDIA_DRIVER))
    assert [f.severity for f in findings] == ["warn", "fail"]
    assert "finds no runtime" in findings[0].detail


def test_finding_unset_variable_names_the_file_and_how_it_was_found(tmp_path: Path) -> None:
    finding = _one(check_runtime_lib(context(cuda_fs(tmp_path, "/lib/libcuda.so.1"), {}, "/lib/libcuda.so.1")), "ok")
    assert "the HAL opens /lib//libcuda.so.1" in finding.title and "system folders" in finding.title
    assert finding.data["variable"] == "XSCHED_CUDA_LIB" and finding.data["real_runtime"] == "/lib/libcuda.so.1"


def test_finding_none_found_lists_the_paths_and_fixes_with_the_builder_s_real_runtime(tmp_path: Path) -> None:
    finding = _one(check_runtime_lib(context(cuda_fs(tmp_path, NVIDIA_DRIVER), {}, NVIDIA_DRIVER)), "fail")
    assert "/lib/x86_64-linux-gnu/libcuda.so" in finding.detail and "/usr/local/lib/libcuda.so.1" in finding.detail
    assert NVIDIA_DRIVER in finding.fix and finding.commands == [f"export XSCHED_CUDA_LIB={NVIDIA_DRIVER}"]
    assert finding.data["hal_runtime"] is None and len(finding.data["tried"]) == 14


def test_finding_none_found_and_no_runtime_known(tmp_path: Path) -> None:
    finding = _one(check_runtime_lib(context(cuda_fs(tmp_path), {}, None)), "fail")
    assert "install the runtime" in finding.fix and finding.commands == []


def test_finding_folder_search_that_reaches_the_shim_is_the_recursion_too(tmp_path: Path) -> None:
    # An install whose lib folder is one of the HAL's folders: the search finds the softlink.
    install = cuda_install("/usr")
    finding = _one(check_runtime_lib(context(cuda_fs(tmp_path, prefix="/usr"), {}, None, install)), "fail")
    assert finding.data["hal_runtime"] == "/usr/lib//libcuda.so" and "SIGSEGV" in finding.detail


def test_finding_hip_platform_folder(tmp_path: Path) -> None:
    install = XSchedInstall(prefix=PREFIX, platform=HIP, version="1.2.0", found_by="test")
    fs = tree_fs(tmp_path, (f"{PREFIX}/lib/{HIP.shim}", "/opt/rocm/lib/libamdhip64.so"))
    finding = _one(check_runtime_lib(context(fs, {}, "/opt/rocm/lib/libamdhip64.so", install)), "ok")
    assert "platform's own folder" in finding.title and finding.data["found_by"] == "platform folder"


@pytest.mark.parametrize("name", ["libcuda.so", "libcuda.so.1"])
def test_finding_variable_at_either_softlink_fails(name: str, tmp_path: Path) -> None:
    value = f"{PREFIX}/lib/{name}"
    finding = _one(check_runtime_lib(context(cuda_fs(tmp_path), {"XSCHED_CUDA_LIB": value}, None)), "fail")
    assert "points at the shim" in finding.title and finding.commands == []
