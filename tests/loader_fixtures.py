"""Real ELF files compiled with gcc/g++ for the ELF reader, loader model and ldd tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

REAL_LOADER = "/lib64/ld-linux-x86-64.so.2"

HAL_GOOD = """
namespace xsched { namespace hip {
class HipCommand {
public:
    HipCommand();
    virtual ~HipCommand();
    virtual int Launch();
};
HipCommand::HipCommand() {}
HipCommand::~HipCommand() {}
int HipCommand::Launch() { return 1; }
}}
extern "C" int hal_version() { return 2; }
"""
HAL_STALE = 'extern "C" int hal_version() { return 1; }\n'
PREEMPT = 'extern "C" int preempt_init() { return 0; }\n'
SHIM = """
namespace xsched { namespace hip {
class HipCommand {
public:
    HipCommand();
    virtual ~HipCommand();
    virtual int Launch();
};
}}
struct ShimCommand : xsched::hip::HipCommand { ~ShimCommand() override; int Launch() override; };
ShimCommand::~ShimCommand() {}
int ShimCommand::Launch() { return 3; }
extern "C" int preempt_init();
extern "C" int hal_version();
extern "C" int hipLaunchKernel() { ShimCommand c; return c.Launch() + preempt_init() + hal_version(); }
"""


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def compile_shared(source: str, output: Path, *, cxx: bool = False, flags: list[str] | None = None,
                   soname: str | None = None) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".cpp" if cxx else ".c"
    source_path = output.with_name(output.name + suffix)
    source_path.write_text(source)
    argv = ["g++" if cxx else "gcc", "-shared", "-fPIC", "-o", str(output), str(source_path)]
    if soname:
        argv.append(f"-Wl,-soname,{soname}")
    argv += flags or []
    result = run(argv)
    assert result.returncode == 0, result.stderr
    return output


def compile_program(source: str, output: Path, flags: list[str] | None = None) -> Path:
    source_path = output.with_name(output.name + ".c")
    source_path.write_text(source)
    result = run(["gcc", "-o", str(output), str(source_path), *(flags or [])])
    assert result.returncode == 0, result.stderr
    return output


def build_xsched_like(root: Path) -> dict[str, Path]:
    """The seed's layout: good HAL and shim in prefix/lib, a stale HAL in stale/."""
    lib = root / "output" / "lib"
    stale = root / "stale"
    paths = {
        "lib": lib,
        "stale_dir": stale,
        "hal": compile_shared(HAL_GOOD, lib / "libhalhip.so", cxx=True, soname="libhalhip.so"),
        "stale_hal": compile_shared(HAL_STALE, stale / "libhalhip.so", cxx=True, soname="libhalhip.so"),
        "preempt": compile_shared(PREEMPT, lib / "libpreempt.so", cxx=True, soname="libpreempt.so"),
    }
    paths["shim"] = compile_shared(
        SHIM, lib / "libshimhip.so", cxx=True, soname="libshimhip.so",
        flags=[f"-L{lib}", "-lhalhip", "-lpreempt", "-Wl,--no-as-needed", f"-Wl,-rpath,{lib}",
               "-Wl,--enable-new-dtags"])
    return paths


_LIST_LINE = re.compile(r"^\s*(\S+)(?: => (\S+|not found))?(?: \(0x[0-9a-f]+\))?\s*$")


def real_loader_list(program: str, env: dict[str, str], cwd: str | None = None) -> tuple[dict[str, str | None], str, int]:
    """``ld.so --list`` of ``program``: {needed name: real path or None}, stderr, exit code."""
    result = run([REAL_LOADER, "--list", program], env=env, cwd=cwd, timeout=30)
    chosen: dict[str, str | None] = {}
    for line in result.stdout.splitlines():
        match = _LIST_LINE.match(line)
        if not match:
            continue
        name, path = match.group(1), match.group(2)
        if name.startswith(("linux-vdso", "linux-gate")) or "ld-linux" in name:
            continue
        if path is None:
            if name.startswith("/"):
                chosen[name] = os.path.realpath(name)
            continue
        chosen[name] = None if path == "not found" else os.path.realpath(path if path.startswith("/") else
                                                                          os.path.join(cwd or os.getcwd(), path))
    return chosen, result.stderr, result.returncode


def model_choices(report) -> dict[str, str | None]:
    """The model's {needed name: real path or None}, in ``ld.so --list`` terms."""
    chosen: dict[str, str | None] = {}
    for edge in report.edges:
        if "ld-linux" in edge.name:  # the dynamic linker: ld.so --list names it by path
            continue
        if edge.path is None:
            chosen.setdefault(edge.name, None)
            continue
        obj = report.object_for(edge.path)
        chosen.setdefault(edge.name, obj.real_path if obj else os.path.realpath(edge.path))
    return chosen


def have_toolchain() -> bool:
    return shutil.which("gcc") is not None and shutil.which("g++") is not None and os.path.exists(REAL_LOADER)
