"""The environment builder on a temporary tree: real ELF files compiled here, read through RootedFS.

The tree is the seed's layout (``build_xsched_like``): the install at ``/output`` with a HAL that
defines HipCommand, a shim linked on it, and a stale HAL in ``/stale``; plus the shim's softlinks
and a real runtime file where the platform looks for it. No Docker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from loader_fixtures import SHIM, build_xsched_like, compile_shared, have_toolchain

from xsched_ops.environment.builder import (
    build_environment,
    find_real_runtime,
    is_shim_or_softlink,
    shadowing_folders,
    shim_lacks_hal_dependency,
)
from xsched_ops.target.fs import RootedFS
from xsched_ops.xsched import platforms
from xsched_ops.xsched.install import XSchedInstall, discover
from xsched_ops.xsched.settings import DEFAULT_ROLES

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs gcc, g++ and the x86-64 loader")

HIP = platforms.get("hip")
PREFIX = "/output"
LIB = f"{PREFIX}/lib"
SHIM_PATH = f"{LIB}/{HIP.shim}"
HAL_PATH = f"{LIB}/{HIP.hal}"
ROCM_RUNTIME = "/opt/rocm/lib/libamdhip64.so.5"


def make_tree(root: Path) -> RootedFS:
    """The seed's tree below ``root``: install, stale HAL, softlinks to the shim, a real runtime."""
    build_xsched_like(root)
    for name in HIP.softlinks:
        os.symlink(HIP.shim, root / "output" / "lib" / name)
    runtime = root / ROCM_RUNTIME.lstrip("/")
    runtime.parent.mkdir(parents=True)
    runtime.write_bytes(b"\x7fELF not the shim")
    return RootedFS(str(root))


@pytest.fixture
def tree(tmp_path: Path) -> RootedFS:
    return make_tree(tmp_path)


@pytest.fixture
def install(tree: RootedFS) -> XSchedInstall:
    return XSchedInstall(prefix=PREFIX, platform=HIP, version=None, found_by="test")


def changed(built, name: str):
    return next(change for change in built.changes if change.name == name)


def test_the_tree_is_found_as_an_install(tree: RootedFS) -> None:
    found = discover(tree, {}, PREFIX)
    assert (found.prefix, found.platform.name, found.shim_path) == (PREFIX, "hip", SHIM_PATH)


def test_seed_environment_drops_the_stale_folder_and_preloads_the_shim(tree: RootedFS, install) -> None:
    base = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": f"/stale:{LIB}"}
    built = build_environment(base, install, tree)
    assert built.env == {"PATH": "/usr/bin", "LD_LIBRARY_PATH": LIB, "LD_PRELOAD": SHIM_PATH,
                         HIP.runtime_lib_env: ROCM_RUNTIME}
    assert built.route == "preload" and built.real_runtime == ROCM_RUNTIME
    assert "dropped /stale (holds a stale libhalhip.so)" in changed(built, "LD_LIBRARY_PATH").reason
    assert built.xsched_only() == {key: built.env[key] for key in
                                   ("LD_LIBRARY_PATH", "LD_PRELOAD", HIP.runtime_lib_env)}
    assert base == {"PATH": "/usr/bin", "LD_LIBRARY_PATH": f"/stale:{LIB}"}  # the input is left alone


def test_empty_entries_go_and_good_folders_keep_their_order(tree: RootedFS, install) -> None:
    built = build_environment({"LD_LIBRARY_PATH": "/opt/a::/opt/b"}, install, tree)
    assert built.env["LD_LIBRARY_PATH"] == f"{LIB}:/opt/a:/opt/b"
    assert "an empty entry" in changed(built, "LD_LIBRARY_PATH").reason


def test_libpath_route_preloads_nothing_and_replaces_an_old_shim(tree: RootedFS, install) -> None:
    base = {"LD_PRELOAD": "/old/xsched/libshimhip.so", "LD_LIBRARY_PATH": "/stale"}
    built = build_environment(base, install, tree, route="libpath")
    assert "LD_PRELOAD" not in built.env
    assert built.env["LD_LIBRARY_PATH"] == LIB
    assert "replaced /old/xsched/libshimhip.so" in changed(built, "LD_PRELOAD").reason


def test_preload_entries_that_cannot_load_are_dropped(tree: RootedFS, install) -> None:
    os.makedirs(tree.root + "/opt/keep")
    Path(tree.root, "opt/keep/libkeep.so").write_bytes(b"\x7fELF")
    built = build_environment({"LD_PRELOAD": "/opt/keep/libkeep.so /missing/libgone.so"}, install, tree)
    assert built.env["LD_PRELOAD"] == f"{SHIM_PATH} /opt/keep/libkeep.so"
    assert "dropped /missing/libgone.so" in changed(built, "LD_PRELOAD").reason


def test_an_underlinked_shim_gets_the_hal_preloaded_in_front(tree: RootedFS, install) -> None:
    assert not shim_lacks_hal_dependency(tree, install)
    compile_shared(SHIM, Path(tree.root, LIB.lstrip("/"), HIP.shim), cxx=True, soname=HIP.shim)
    assert shim_lacks_hal_dependency(tree, install)
    built = build_environment({}, install, tree)
    assert built.env["LD_PRELOAD"] == f"{HAL_PATH} {SHIM_PATH}"
    assert "underlinked" in changed(built, "LD_PRELOAD").reason


def test_a_runtime_variable_on_the_shim_s_softlink_is_pointed_at_the_real_runtime(tree: RootedFS, install) -> None:
    softlink = f"{LIB}/{HIP.softlinks[0]}"
    assert is_shim_or_softlink(tree, install, softlink) and is_shim_or_softlink(tree, install, SHIM_PATH)
    assert not is_shim_or_softlink(tree, install, ROCM_RUNTIME)
    built = build_environment({HIP.runtime_lib_env: softlink}, install, tree)
    assert built.env[HIP.runtime_lib_env] == ROCM_RUNTIME
    assert "the shim would call itself" in changed(built, HIP.runtime_lib_env).reason


def test_without_a_real_runtime_a_variable_on_the_shim_goes(tmp_path: Path, install) -> None:
    os.remove(tmp_path / ROCM_RUNTIME.lstrip("/"))
    tree = RootedFS(str(tmp_path))
    built = build_environment({HIP.runtime_lib_env: SHIM_PATH}, install, tree)
    assert HIP.runtime_lib_env not in built.env and built.real_runtime is None
    assert "no real runtime found" in changed(built, HIP.runtime_lib_env).reason


def test_the_real_runtime_lookup_skips_the_shim_and_prefers_the_variable(tree: RootedFS, install) -> None:
    assert find_real_runtime(tree, install, {}) == ROCM_RUNTIME
    assert find_real_runtime(tree, install, {HIP.runtime_lib_env: SHIM_PATH}) == ROCM_RUNTIME
    other = Path(tree.root, "opt/vendor/libamdhip64.so")
    other.parent.mkdir(parents=True)
    other.write_bytes(b"\x7fELF")
    assert find_real_runtime(tree, install, {HIP.runtime_lib_env: "/opt/vendor/libamdhip64.so"}) == \
        "/opt/vendor/libamdhip64.so"


def test_role_settings_are_applied_and_a_bogus_policy_goes(tree: RootedFS, install) -> None:
    base = {"XSCHED_POLICY": "GBL", "XSCHED_SCHEDULER": "GLB"}
    built = build_environment(base, install, tree, role="high", scheduling=DEFAULT_ROLES["high"])
    assert "XSCHED_POLICY" not in built.env
    assert built.env["XSCHED_AUTO_XQUEUE_PRIORITY"] == "1" and built.env["XSCHED_SCHEDULER"] == "GLB"
    assert "not a policy name" in changed(built, "XSCHED_POLICY").reason
    # A real policy goes too when the role asks for the global scheduler.
    built = build_environment({"XSCHED_POLICY": "HPF"}, install, tree, role="low", scheduling=DEFAULT_ROLES["low"])
    assert "XSCHED_POLICY" not in built.env and built.env["XSCHED_AUTO_XQUEUE_PRIORITY"] == "0"


# -- the shadowing folders ------------------------------------------------------------------------

def test_folders_holding_copies_of_xsched_libraries_shadow_the_install(tree: RootedFS, install) -> None:
    other = Path(tree.root, "opt/xsched-1.0/lib")
    other.mkdir(parents=True)
    (other / "libpreempt.so").write_bytes(b"\x7fELF")
    (other / HIP.shim).write_bytes(b"\x7fELF")
    shadows = shadowing_folders(tree, install, ["/stale", "/opt/xsched-1.0/lib", "/usr/lib", LIB])
    assert shadows == {"/stale": [HIP.hal], "/opt/xsched-1.0/lib": [HIP.shim, "libpreempt.so"]}


def test_the_install_s_own_folder_by_another_name_and_relative_folders_do_not_shadow(tree: RootedFS,
                                                                                      install) -> None:
    os.symlink("/output/lib", Path(tree.root, "xsched-lib"))
    assert shadowing_folders(tree, install, ["/xsched-lib", "stale", "", "/output/lib/"]) == {}
    built = build_environment({"LD_LIBRARY_PATH": "/xsched-lib:/stale"}, install, tree)
    assert built.env["LD_LIBRARY_PATH"] == f"{LIB}:/xsched-lib"
