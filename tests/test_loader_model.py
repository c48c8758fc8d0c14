"""The loader model against the real glibc loader of this host (ld.so --list, and real runs)."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from loader_fixtures import (
    REAL_LOADER,
    build_xsched_like,
    compile_program,
    compile_shared,
    have_toolchain,
    model_choices,
    real_loader_list,
    run,
)

from xsched_ops.loader import analyze, find_definers
from xsched_ops.target.fs import HostFS

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs gcc, g++ and the x86-64 loader")

BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C"}
MAIN_CALLING_F = "int f(void); int main(void){ return f() == 7 ? 0 : 1; }"


def model(program: str | Path, env: dict[str, str], cwd: str | Path = "/"):
    return analyze(HostFS(), str(program), env, str(cwd))


def assert_agrees_with_real_loader(program: str | Path, env: dict[str, str], cwd: str | Path = "/"):
    report = model(program, env, cwd)
    real, stderr, _ = real_loader_list(str(program), env, cwd=str(cwd))
    assert model_choices(report) == real, stderr
    return report


@pytest.fixture(scope="module")
def xsched(tmp_path_factory):
    return build_xsched_like(tmp_path_factory.mktemp("seed"))


def test_seed_stale_hal_shadows_the_good_one(xsched):
    env = {**BASE_ENV, "LD_LIBRARY_PATH": f"{xsched['stale_dir']}:{xsched['lib']}", "LD_PRELOAD": str(xsched["shim"])}
    report = assert_agrees_with_real_loader("/bin/true", env)
    typeinfo = next(u for u in report.unresolved_symbols if u.symbol == "_ZTIN6xsched3hip10HipCommandE")
    assert typeinfo.demangled == "typeinfo for xsched::hip::HipCommand"
    assert typeinfo.needed_by == str(xsched["shim"])
    assert typeinfo.when == "startup"
    assert typeinfo.loaded_provider.path == str(xsched["stale_hal"])
    assert typeinfo.loaded_provider.reason == "found via LD_LIBRARY_PATH entry 1"
    assert typeinfo.expected_provider.path == str(xsched["hal"])
    # The real loader dies with exactly the model's first error.
    real = run(["/bin/true"], env=env)
    assert real.returncode == 127
    assert real.stderr.strip() == f"/bin/true: {report.fatal_error}"
    assert not report.would_start


def test_seed_fixed_by_putting_the_good_folder_first(xsched):
    env = {**BASE_ENV, "LD_LIBRARY_PATH": f"{xsched['lib']}:{xsched['stale_dir']}", "LD_PRELOAD": str(xsched["shim"])}
    report = assert_agrees_with_real_loader("/bin/true", env)
    assert report.would_start and not report.unresolved_symbols
    hal = report.object_for("libhalhip.so")
    assert hal.reason == "found via LD_LIBRARY_PATH entry 1"
    assert run(["/bin/true"], env=env).returncode == 0


def test_runpath_used_without_ld_library_path(xsched):
    env = {**BASE_ENV, "LD_PRELOAD": str(xsched["shim"])}
    report = assert_agrees_with_real_loader("/bin/true", env)
    assert report.object_for("libhalhip.so").reason == "RUNPATH of libshimhip.so"
    assert report.would_start


def test_failed_preload_is_a_warning_with_the_loaders_text(tmp_path):
    env = {**BASE_ENV, "LD_PRELOAD": f"libdoesnotexist.so {tmp_path}/libmissing.so"}
    report = model("/bin/true", env)
    real = run(["/bin/true"], env=env)
    assert real.returncode == 0
    assert [p.warning for p in report.failed_preloads] == real.stderr.strip().splitlines()
    assert report.would_start
    assert report.failed_preloads[1].tried[0].path == f"{tmp_path}/libmissing.so"


def test_rpath_chain_origin_and_order(tmp_path):
    """RPATH of the executable is inherited by its libraries; RUNPATH is not; $ORIGIN expands."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    compile_shared("int g(void){return 7;}", tmp_path / "a" / "libg.so", soname="libg.so")
    compile_shared("int g(void){return 9;}", tmp_path / "b" / "libg.so", soname="libg.so")
    compile_shared("int g(void); int f(void){return g();}", tmp_path / "b" / "libf.so", soname="libf.so",
                   flags=[f"-L{tmp_path / 'b'}", "-lg"])
    program = compile_program(MAIN_CALLING_F, tmp_path / "prog_rpath",
                              flags=[f"-L{tmp_path / 'b'}", f"-Wl,-rpath-link,{tmp_path / 'b'}", "-lf", "-Wl,--disable-new-dtags",
                                     "-Wl,-rpath,$ORIGIN/a:$ORIGIN/b"])
    report = assert_agrees_with_real_loader(program, BASE_ENV)
    assert report.object_for("libg.so").path == str(tmp_path / "a" / "libg.so")
    assert report.object_for("libg.so").reason == "RPATH of prog_rpath"
    assert run([str(program)], env=BASE_ENV).returncode == 0
    # With RUNPATH the executable's entry is not inherited: libf.so cannot find libg.so.
    program2 = compile_program(MAIN_CALLING_F, tmp_path / "prog_runpath",
                               flags=[f"-L{tmp_path / 'b'}", f"-Wl,-rpath-link,{tmp_path / 'b'}", "-lf", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/b"])
    report2 = model(program2, BASE_ENV)
    assert [n.name for n in report2.not_found] == ["libg.so"]
    real = run([str(program2)], env=BASE_ENV)
    assert real.stderr.strip() == f"{program2}: {report2.fatal_error}"
    # LD_LIBRARY_PATH (with an empty entry and ';') comes before RUNPATH.
    env = {**BASE_ENV, "LD_LIBRARY_PATH": f";{tmp_path / 'a'}"}
    report3 = assert_agrees_with_real_loader(program2, env, cwd=tmp_path)
    assert report3.object_for("libg.so").reason == "found via LD_LIBRARY_PATH entry 2"


def test_wrong_machine_and_class_are_skipped(tmp_path):
    good, bad_machine, bad_class = tmp_path / "good", tmp_path / "badmachine", tmp_path / "badclass"
    lib = compile_shared("int f(void){return 7;}", good / "libf.so", soname="libf.so")
    for folder in (bad_machine, bad_class):
        folder.mkdir()
        shutil.copy(lib, folder / "libf.so")
    data = bytearray((bad_machine / "libf.so").read_bytes())
    struct.pack_into("<H", data, 18, 183)  # EM_AARCH64
    (bad_machine / "libf.so").write_bytes(bytes(data))
    data = bytearray((bad_class / "libf.so").read_bytes())
    data[4] = 1  # ELFCLASS32
    (bad_class / "libf.so").write_bytes(bytes(data))
    program = compile_program(MAIN_CALLING_F, tmp_path / "prog", flags=[f"-L{good}", "-lf"])
    env = {**BASE_ENV, "LD_LIBRARY_PATH": f"{bad_machine}:{bad_class}:{good}"}
    report = assert_agrees_with_real_loader(program, env)
    obj = report.object_for("libf.so")
    assert obj.reason == "found via LD_LIBRARY_PATH entry 3"
    outcomes = [step.outcome for step in obj.search if not step.source.endswith(")")]
    assert outcomes == ["skipped: wrong machine (AArch64)", "skipped: wrong ELF class (ELFCLASS32)", "found"]
    # Only the wrong-class file: the real loader's message names the class.
    env = {**BASE_ENV, "LD_LIBRARY_PATH": str(bad_class)}
    report = model(program, env)
    real = run([str(program)], env=env)
    assert real.stderr.strip() == f"{program}: {report.fatal_error}"


def test_version_not_found_and_weak_undefined(tmp_path):
    script1 = tmp_path / "v1.map"
    script1.write_text("XS_1.0 { global: old_api; local: *; };\n")
    script2 = tmp_path / "v2.map"
    script2.write_text("XS_1.0 { global: old_api; local: *; };\nXS_2.0 { global: new_api; } XS_1.0;\n")
    new = compile_shared("int old_api(void){return 1;} int new_api(void){return 2;}", tmp_path / "new" / "libv.so",
                         soname="libv.so", flags=[f"-Wl,--version-script={script2}"])
    compile_shared("int old_api(void){return 1;}", tmp_path / "old" / "libv.so", soname="libv.so",
                   flags=[f"-Wl,--version-script={script1}"])
    program = compile_program(
        "int new_api(void); __attribute__((weak)) int maybe(void);\n"
        "int main(void){ return new_api() == 2 && !maybe ? 0 : 1; }",
        tmp_path / "prog", flags=[f"-L{new.parent}", "-lv"])
    env = {**BASE_ENV, "LD_LIBRARY_PATH": str(tmp_path / "new")}
    report = assert_agrees_with_real_loader(program, env)
    assert report.would_start and not report.unresolved_symbols  # weak undefined `maybe` is fine
    assert run([str(program)], env=env).returncode == 0
    env = {**BASE_ENV, "LD_LIBRARY_PATH": str(tmp_path / "old")}
    report = assert_agrees_with_real_loader(program, env)
    assert [(v.version, v.severity) for v in report.version_problems] == [("XS_2.0", "error")]
    real = run([str(program)], env=env)
    assert real.stderr.strip() == f"{program}: {report.fatal_error}"


def test_lazy_function_fails_only_when_called(tmp_path):
    compile_shared("int f(void){return 7;} int h(void){return 1;}", tmp_path / "full" / "libf.so", soname="libf.so")
    compile_shared("int f(void){return 7;}", tmp_path / "part" / "libf.so", soname="libf.so")
    program = compile_program(
        "int f(void); int h(void); int main(int argc, char **argv){ (void)argv; return argc > 1 ? h() : f() - 7; }",
        tmp_path / "prog", flags=[f"-L{tmp_path / 'full'}", "-lf", "-Wl,-z,lazy"])
    env = {**BASE_ENV, "LD_LIBRARY_PATH": str(tmp_path / "part")}
    report = model(program, env)
    assert [(u.symbol, u.when) for u in report.unresolved_symbols] == [("h", "lazy")]
    assert report.would_start
    assert run([str(program)], env=env).returncode == 0
    assert "undefined symbol: h" in run([str(program), "call-h"], env=env).stderr
    report_now = model(program, {**env, "LD_BIND_NOW": "1"})
    assert not report_now.would_start
    real = run([str(program)], env={**env, "LD_BIND_NOW": "1"})
    assert real.stderr.strip() == f"{program}: {report_now.fatal_error}"


def test_find_definers(xsched):
    folders = [str(xsched["stale_dir"]), str(xsched["lib"])]
    assert find_definers(HostFS(), "_ZTIN6xsched3hip10HipCommandE", folders) == [str(xsched["hal"])]
    assert find_definers(HostFS(), "hal_version", folders) == [str(xsched["stale_hal"]), str(xsched["hal"])]


def _elf_programs(folder: str) -> list[str]:
    programs = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as handle:
            head = handle.read(20)
        if head[:4] == b"\x7fELF" and head[4] == 2 and struct.unpack("<H", head[18:20])[0] == 62:
            programs.append(path)
    return programs


def test_every_usr_bin_program_agrees_with_ld_so_list():
    """The model's file for every needed name equals the real loader's, over all of /usr/bin."""
    env = {"PATH": "/usr/bin:/bin"}
    disagreements = []
    checked = 0
    for program in _elf_programs("/usr/bin"):
        real, stderr, code = real_loader_list(program, env)
        if code != 0 and not real:
            continue  # static programs: "not a dynamic executable"
        report = analyze(HostFS(), program, env, "/", check_symbols=False)
        checked += 1
        if model_choices(report) != real:
            disagreements.append((program, model_choices(report), real))
    assert checked > 50
    assert not disagreements, disagreements[:3]


def test_real_loader_exists():
    assert os.path.exists(REAL_LOADER)
