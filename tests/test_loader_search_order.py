"""One search order for the resolution and for the list of candidate files (issue 13, part 4).

The loader model walks ``loader.search.search_places`` both to pick a file and to list every
file that could provide a name (which names the file that would define a missing symbol). These
tests build the cases where the two copies used to differ (an inherited DT_RPATH; an object that
has DT_RPATH and DT_RUNPATH, whose DT_RPATH glibc ignores; the ld.so.cache before the default
folders) and check the resolution against the real loader and the listing against the resolution.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from loader_fixtures import (
    compile_program,
    compile_shared,
    have_toolchain,
    model_choices,
    real_loader_list,
    run,
)

from xsched_ops.elf import clear_cache, parse_ld_so_cache
from xsched_ops.loader.model import LoaderModel
from xsched_ops.loader.search import search_places
from xsched_ops.target.fs import HostFS, RootedFS

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs gcc and the x86-64 loader")

BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C"}
STALE_HAL = "int hal_version(void){return 1;}"
GOOD_HAL = "int hal_version(void){return 2;} int hal_new(void){return 5;}"
USES_HAL_NEW = "int hal_new(void); int {name}(void){{return hal_new();}}"


def _model(env: dict[str, str], program: Path, fs=None, cache=None) -> tuple[LoaderModel, object]:
    clear_cache()
    model = LoaderModel(fs or HostFS(), env, "/", cache=cache)
    return model, model.run(str(program))


def _map(model: LoaderModel, file_name: str):
    return next(m for m in model.maps if m.path.endswith("/" + file_name))


def _add_runpath_like_rpath(library: Path) -> None:
    """Give ``library`` a DT_RUNPATH naming the same string as its DT_RPATH: GNU ld writes one or
    the other, glibc's rule is about objects that have both. The DT_NULL is moved one slot down
    (ld leaves spare DT_NULL slots at the end of the dynamic section)."""
    data = bytearray(library.read_bytes())
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    dynamic = None
    for index in range(phnum):
        p_type, _, p_offset, _, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * index)
        if p_type == 2:
            dynamic = (p_offset, p_filesz)
    assert dynamic is not None
    entries = [struct.unpack_from("<qQ", data, dynamic[0] + 16 * i) for i in range(dynamic[1] // 16)]
    end = next(i for i, (tag, _) in enumerate(entries) if tag == 0)
    assert end + 1 < len(entries), "no spare dynamic slot"
    rpath_value = next(value for tag, value in entries if tag == 15)
    struct.pack_into("<qQ", data, dynamic[0] + 16 * end, 29, rpath_value)  # DT_RUNPATH
    struct.pack_into("<qQ", data, dynamic[0] + 16 * (end + 1), 0, 0)
    library.write_bytes(bytes(data))


def test_an_inherited_rpath_is_first_in_the_resolution_and_in_the_candidates(tmp_path: Path) -> None:
    stale, good, shim = tmp_path / "stale", tmp_path / "good", tmp_path / "shim"
    compile_shared(STALE_HAL, stale / "libhal.so", soname="libhal.so")
    compile_shared(GOOD_HAL, good / "libhal.so", soname="libhal.so")
    compile_shared(USES_HAL_NEW.format(name="shim"), shim / "libshim.so", soname="libshim.so",
                   flags=[f"-L{good}", "-lhal"])
    program = compile_program("int shim(void); int main(void){ return shim() == 5 ? 0 : 1; }", tmp_path / "prog",
                              flags=[f"-L{shim}", "-lshim", f"-Wl,-rpath-link,{good}", "-Wl,--disable-new-dtags",
                                     f"-Wl,-rpath,{stale}"])
    env = {**BASE_ENV, "LD_LIBRARY_PATH": f"{shim}:{good}", "LD_BIND_NOW": "1"}
    model, report = _model(env, program)
    real, stderr, _ = real_loader_list(str(program), env)
    assert model_choices(report) == real, stderr
    hal = report.object_for("libhal.so")
    assert (hal.path, hal.reason) == (str(stale / "libhal.so"), "RPATH of prog")
    # The listing walks the same order: the loaded copy first, then the one that defines hal_new.
    listed = [(path, reason) for path, reason, _ in model.candidates("libhal.so", _map(model, "libshim.so"))]
    assert listed == [(str(stale / "libhal.so"), "RPATH of prog"),
                      (str(good / "libhal.so"), "found via LD_LIBRARY_PATH entry 2")]
    missing = next(u for u in report.unresolved_symbols if u.symbol == "hal_new")
    assert (missing.loaded_provider.path, missing.loaded_provider.reason) == listed[0]
    assert (missing.expected_provider.path, missing.expected_provider.reason) == listed[1]
    real_run = run([str(program)], env=env)
    assert real_run.returncode == 127 and real_run.stderr.strip() == f"{program}: {report.fatal_error}"


def test_the_rpath_of_an_object_that_has_a_runpath_is_ignored_by_both(tmp_path: Path) -> None:
    stale, good, mid, leaf = (tmp_path / name for name in ("stale", "good", "mid", "leaf"))
    compile_shared(STALE_HAL, stale / "libhal.so", soname="libhal.so")
    compile_shared(GOOD_HAL, good / "libhal.so", soname="libhal.so")
    compile_shared(USES_HAL_NEW.format(name="leaf"), leaf / "libleaf.so", soname="libleaf.so",
                   flags=[f"-L{good}", "-lhal"])
    compile_shared("int leaf(void); int mid(void){return leaf();}", mid / "libmid.so", soname="libmid.so",
                   flags=[f"-L{leaf}", "-lleaf", "-Wl,--disable-new-dtags", f"-Wl,-rpath,{stale}"])
    _add_runpath_like_rpath(mid / "libmid.so")
    program = compile_program("int mid(void); int main(void){ return mid() == 5 ? 0 : 1; }", tmp_path / "prog",
                              flags=[f"-L{mid}", "-lmid", f"-Wl,-rpath-link,{leaf}:{good}"])
    env = {**BASE_ENV, "LD_LIBRARY_PATH": f"{mid}:{leaf}:{good}"}
    model, report = _model(env, program)
    assert _map(model, "libmid.so").elf.rpath == _map(model, "libmid.so").elf.runpath == (str(stale),)
    real, stderr, _ = real_loader_list(str(program), env)
    assert model_choices(report) == real, stderr
    assert report.object_for("libhal.so").path == str(good / "libhal.so")
    assert run([str(program)], env=env).returncode == 0 and report.would_start
    # libmid's DT_RPATH is not inherited by libleaf: the stale copy is no candidate at all.
    listed = [path for path, _, _ in model.candidates("libhal.so", _map(model, "libleaf.so"))]
    assert listed == [str(good / "libhal.so")]
    steps = [step.source for step in report.object_for("libhal.so").search]
    assert not any(source.startswith("RPATH") for source in steps)


def test_the_ld_so_cache_comes_before_the_default_folders_in_both(tmp_path: Path) -> None:
    if shutil.which("ldconfig", path="/usr/sbin:/sbin:/usr/bin:/bin") is None:
        pytest.skip("needs ldconfig")
    root = tmp_path / "root"
    compile_shared(STALE_HAL, root / "opt" / "stale" / "libhal.so", soname="libhal.so", flags=["-nostdlib"])
    compile_shared(GOOD_HAL, root / "lib" / "libhal.so", soname="libhal.so", flags=["-nostdlib"])
    app = root / "opt" / "app"
    compile_shared(USES_HAL_NEW.format(name="shim"), app / "libshim.so", soname="libshim.so",
                   flags=["-nostdlib", f"-L{root / 'lib'}", "-lhal"])
    compile_shared("int shim(void); int start(void){return shim();}", app / "prog.so",
                   flags=["-nostdlib", f"-L{app}", "-lshim", f"-Wl,-rpath-link,{root / 'lib'}"])
    (root / "etc").mkdir()
    (root / "etc" / "ld.so.conf").write_text("/opt/stale\n")
    built = subprocess.run(["ldconfig", "-r", str(root), "-X", "-C", "/etc/ld.so.cache", "-f", "/etc/ld.so.conf",
                            "/opt/stale"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    cache = parse_ld_so_cache((root / "etc" / "ld.so.cache").read_bytes())
    fs = RootedFS(str(root))
    env = {"LD_LIBRARY_PATH": "/opt/app", "LD_BIND_NOW": "1"}
    model, report = _model(env, Path("/opt/app/prog.so"), fs=fs, cache=cache)
    hal = report.object_for("libhal.so")
    assert (hal.path, hal.reason) == ("/opt/stale/libhal.so", "ld.so.cache")
    listed = [(path, reason) for path, reason, _ in model.candidates("libhal.so", _map(model, "libshim.so"))]
    assert listed == [("/opt/stale/libhal.so", "ld.so.cache"), ("/lib/libhal.so", "found via default directory")]
    missing = next(u for u in report.unresolved_symbols if u.symbol == "hal_new")
    assert missing.expected_provider.path == "/lib/libhal.so"
    assert missing.expected_provider.reason == "found via default directory"


def test_an_empty_ld_library_path_is_no_entry_and_an_empty_entry_is_the_cwd(tmp_path: Path) -> None:
    lib = compile_shared("int f(void){return 7;}", tmp_path / "libf.so", soname="libf.so")
    program = compile_program("int f(void); int main(void){ return f() == 7 ? 0 : 1; }", tmp_path / "prog",
                              flags=[f"-L{tmp_path}", "-lf"])
    for value, found in (("", False), (":", True)):
        env = {**BASE_ENV, "LD_LIBRARY_PATH": value}
        clear_cache()
        report = LoaderModel(HostFS(), env, str(tmp_path)).run(str(program))
        real = subprocess.run([str(program)], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert (real.returncode == 0) == found == report.would_start, (value, real.stderr)
        if found:
            assert os.path.realpath(report.object_for("libf.so").path) == str(lib)


def test_search_places_is_lazy_about_the_cache(tmp_path: Path) -> None:
    """The ld.so.cache is looked up only when the walk reaches it (a hit before costs nothing)."""
    lib = compile_shared("int f(void){return 7;}", tmp_path / "libf.so", soname="libf.so")
    program = compile_program("int f(void); int main(void){ return f() == 7 ? 0 : 1; }", tmp_path / "prog",
                              flags=[f"-L{tmp_path}", "-lf"])
    model, report = _model({"LD_LIBRARY_PATH": str(tmp_path)}, program)
    looked_up: list[str] = []

    def lookup(name: str) -> str | None:
        looked_up.append(name)
        return None

    places = search_places("libf.so", model.main, model.main, str(tmp_path), "/", model.platform, lookup)
    first = next(places)
    assert (first.source, first.folder) == ("LD_LIBRARY_PATH entry 1", str(tmp_path)) and looked_up == []
    rest = list(places)
    assert looked_up == ["libf.so"] and [p.source for p in rest] == ["default directory"] * len(rest)
    assert report.object_for("libf.so").path == str(lib)
