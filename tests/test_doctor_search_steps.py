"""The doctor's explanation of a shim that does not load, for every search step the loader can take a
stale XSched library by (issue 14, part 2), against the real loader in a sandbox container.

Each case puts a stale libhalhip.so (no xsched::hip::HipCommand) where one search step finds it: the
shim's own DT_RPATH, the executable's DT_RPATH (inherited by the preloaded shim), LD_LIBRARY_PATH,
the shim's RUNPATH naming another prefix, a RUNPATH with $ORIGIN, ld.so.cache, a default folder, a
preload, and a name already loaded by SONAME. The install's good copy lies in its prefix, on the
search path or not. The doctor (`doctor --json`, the environment stored in the target as `doctor
--fix` stores it) must name the file the real loader took (`LD_DEBUG=libs,files` of a real process
in the container) and the step that found it. The ELF files are compiled here; one container serves
every case.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from loader_fixtures import (
    HAL_GOOD,
    HAL_STALE,
    PREEMPT,
    SHIM,
    compile_program,
    compile_shared,
    have_toolchain,
)

from xsched_ops.cli import invoke
from xsched_ops.environment import stored_env
from xsched_ops.sandbox import containers as sandbox_containers
from xsched_ops.sandbox import scenarios as sandbox_scenarios
from xsched_ops.target.container import ContainerTarget

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not have_toolchain(), reason="needs gcc, g++ and the host's dynamic loader")]

ROOT = "/opt/steps"
STALE = f"{ROOT}/stale"  # an older install's lib folder: a HAL without HipCommand, and libpreempt.so
CACHED = f"{ROOT}/cached"  # the same, registered in ld.so.cache by one case
DEFAULT_DIR = "/usr/lib"  # a default folder of the loader that ld.so.cache does not list
OLD_BUILD_LIB = f"{ROOT}/xsched-old/lib"  # the older build's own prefix, which its libpreempt.so names
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TYPEINFO = "_ZTIN6xsched3hip10HipCommandE"
PROGRAM = "int main(void) { return 0; }\n"


@dataclass(frozen=True)
class Case:
    name: str
    shim: str  # which shim build (see ``_build``) the case's prefix holds
    env: dict[str, str] = field(default_factory=dict)
    program: bool = False  # a program of the case's prefix plays python3 (first on PATH; see ``_build``)
    stale: str = f"{STALE}/libhalhip.so"  # the file the loader takes
    model_reason: str = ""  # how the doctor must say the loader reached it (start of the reason)
    real_label: str | None = None  # the real loader's words for that step; None: it searched nothing

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.name}"

    @property
    def shim_path(self) -> str:
        return f"{self.prefix}/lib/libshimhip.so"


CASES = [
    Case("rpath-object", "rpath-stale", env={"LD_LIBRARY_PATH": f"{ROOT}/rpath-object/lib"},
         model_reason="RPATH of libshimhip.so", real_label=f"RPATH from file {ROOT}/rpath-object/lib/libshimhip.so"),
    Case("rpath-executable", "plain", program=True,
         model_reason="RPATH of python3", real_label=f"RPATH from file {ROOT}/rpath-executable/bin/python3"),
    Case("ld-library-path", "runpath-own", env={"LD_LIBRARY_PATH": STALE},
         model_reason="found via LD_LIBRARY_PATH entry 1", real_label="LD_LIBRARY_PATH"),
    Case("runpath", "runpath-stale", model_reason="RUNPATH of libshimhip.so",
         real_label=f"RUNPATH from file {ROOT}/runpath/lib/libshimhip.so"),
    Case("origin", "runpath-origin", stale=f"{ROOT}/origin/stale/libhalhip.so",
         model_reason="RUNPATH of libshimhip.so", real_label=f"RUNPATH from file {ROOT}/origin/lib/libshimhip.so"),
    Case("cache", "plain", stale=f"{CACHED}/libhalhip.so", model_reason="ld.so.cache", real_label="ld.so.cache"),
    # /lib is /usr/lib in the image (merged /usr): the loader reaches the file through the default folder /lib.
    Case("default-folder", "plain", stale="/lib/libhalhip.so",
         model_reason="found via default directory", real_label="system search path"),
    Case("preload", "runpath-own", env={"LD_PRELOAD": f"{STALE}/libhalhip.so"},
         model_reason=f"already loaded as {STALE}/libhalhip.so (LD_PRELOAD"),
    Case("soname", "runpath-own", program=True, stale=f"{ROOT}/compat/libhalcompat.so",
         model_reason=f"already loaded as {ROOT}/compat/libhalcompat.so (RUNPATH of python3), whose SONAME is "
                      "libhalhip.so"),
]


def _build(local: Path) -> None:
    """The tree that goes to ROOT: every case's prefix (good HAL, libpreempt.so, its shim build), the
    stale folders and the programs that play python3."""
    build = local.parent / "build"
    good = compile_shared(HAL_GOOD, build / "good" / "libhalhip.so", cxx=True, soname="libhalhip.so")
    stale = compile_shared(HAL_STALE, build / "stale" / "libhalhip.so", cxx=True, soname="libhalhip.so")
    preempt = compile_shared(PREEMPT, build / "good" / "libpreempt.so", cxx=True, soname="libpreempt.so")
    link = ["-Wl,--no-as-needed", f"-L{good.parent}", "-lhalhip", "-lpreempt"]
    shims = {
        "plain": [],
        "rpath-stale": ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{STALE}"],
        # "runpath-own": RUNPATH = its own lib folder, as XSched's build does (per case, below)
        "runpath-stale": ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{STALE}"],
        "runpath-origin": ["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../stale"],
    }
    for case in CASES:
        lib = local / case.name / "lib"
        lib.mkdir(parents=True)
        flags = (["-Wl,--enable-new-dtags", f"-Wl,-rpath,{case.prefix}/lib"] if case.shim == "runpath-own"
                 else shims[case.shim])
        compile_shared(SHIM, lib / "libshimhip.so", cxx=True, soname="libshimhip.so", flags=[*link, *flags])
        shutil.copy(good, lib / "libhalhip.so")
        shutil.copy(preempt, lib / "libpreempt.so")
    for folder in (local / "stale", local / "cached", local / "origin" / "stale"):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(stale, folder / "libhalhip.so")
        shutil.copy(preempt, folder / "libpreempt.so")
    # A stale HAL under another file name (SONAME libhalhip.so), which the soname case's program needs.
    compat_link = compile_shared(HAL_STALE, build / "compat" / "libhalcompat.so", cxx=True, soname="libhalcompat.so")
    (local / "compat").mkdir()
    shutil.copy(stale, local / "compat" / "libhalcompat.so")
    bin_rpath = local / "rpath-executable" / "bin"
    bin_rpath.mkdir()
    compile_program(PROGRAM, bin_rpath / "python3", ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{STALE}"])
    bin_compat = local / "soname" / "bin"
    bin_compat.mkdir()
    compile_program(PROGRAM, bin_compat / "python3",
                    ["-Wl,--no-as-needed", f"-L{compat_link.parent}", "-lhalcompat", "-Wl,--enable-new-dtags",
                     f"-Wl,-rpath,{ROOT}/compat"])
    # Mixed builds that load: the install's shim and HAL, and a libpreempt.so of an older build (built
    # for another prefix) found first on LD_LIBRARY_PATH.
    mixed = local / "mixed" / "lib"
    mixed.mkdir(parents=True)
    compile_shared(SHIM, mixed / "libshimhip.so", cxx=True, soname="libshimhip.so",
                   flags=[*link, "-Wl,--enable-new-dtags", f"-Wl,-rpath,{ROOT}/mixed/lib"])
    shutil.copy(good, mixed / "libhalhip.so")
    shutil.copy(preempt, mixed / "libpreempt.so")
    compile_shared(PREEMPT + 'extern "C" int preempt_legacy() { return 1; }\n', local / "old-preempt" / "libpreempt.so",
                   cxx=True, soname="libpreempt.so", flags=["-Wl,--enable-new-dtags", f"-Wl,-rpath,{OLD_BUILD_LIB}"])
    (local / "xsched-old" / "lib").mkdir(parents=True)
    shutil.copy(local / "old-preempt" / "libpreempt.so", local / "xsched-old" / "lib" / "libpreempt.so")
    for leftover in local.rglob("*.c*"):  # the sources compile_* wrote beside their outputs
        leftover.unlink()


@pytest.fixture(scope="module")
def steps_container(sandbox_image: str, tmp_path_factory: pytest.TempPathFactory):
    local = tmp_path_factory.mktemp("steps") / "steps"
    _build(local)
    name = f"xo-steps-{uuid.uuid4().hex[:8]}"
    try:
        sandbox_containers.create_sandbox(name, "ok")
        target = ContainerTarget.open(name)
        try:
            target.copy_in(local, ROOT)
            yield name, target
        finally:
            target.close()
    finally:
        try:
            sandbox_containers.remove_sandbox(name)
        except Exception:  # never created (create_sandbox removes what it half made)
            pass


def _run(target: ContainerTarget, argv: list[str]) -> None:
    result = target.exec(argv, timeout=60)
    assert result.exit_code == 0, (argv, result.stderr)


@pytest.fixture
def placed(steps_container, request: pytest.FixtureRequest):
    """The case's extra placement (ld.so.cache, a default folder), undone after the case."""
    name, target = steps_container
    case: Case = request.param
    if case.name == "cache":
        _run(target, ["sh", "-c", f"echo {CACHED} > /etc/ld.so.conf.d/steps.conf && ldconfig"])
    if case.name == "default-folder":
        _run(target, ["cp", f"{STALE}/libhalhip.so", f"{STALE}/libpreempt.so", f"{DEFAULT_DIR}/"])
    try:
        yield name, target, case
    finally:
        _run(target, ["sh", "-c", "rm -f /etc/ld.so.conf.d/steps.conf "
                                  f"{DEFAULT_DIR}/libhalhip.so {DEFAULT_DIR}/libpreempt.so && ldconfig"])
        stored_env.remove(target)


_DEBUG_PREFIX = re.compile(r"^\s*\d+:\s?")


def real_requests(stderr: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    """What the real loader printed under LD_DEBUG=libs,files: {(name, needed by): (file taken, the step's
    label)}. A name it reused (already loaded, or by SONAME) is searched for nobody and has no entry."""
    requests: dict[tuple[str, str], tuple[str, str | None]] = {}
    request: tuple[str, str] | None = None
    label: str | None = None
    tried: tuple[str, str | None] | None = None
    for raw in stderr.splitlines():
        line = _DEBUG_PREFIX.sub("", raw).strip()
        if match := re.match(r"file=(\S+) \[0\];  needed by (\S+) \[0\]$", line):
            request, label, tried = (match.group(1), match.group(2)), None, None
        elif match := re.match(r"search path=.*\t\((.+)\)$", line):
            label = match.group(1)
        elif line.startswith("search cache="):
            label = "ld.so.cache"
        elif line.startswith("trying file="):
            tried = (line.removeprefix("trying file="), label)
        elif (match := re.match(r"file=(\S+) \[0\];  generating link map$", line)) and request is not None \
                and match.group(1) == request[0]:
            requests[request] = tried if tried is not None else (request[0], "path given")
            request = None
    return requests


def _doctor(name: str, case: Case, capfd: pytest.CaptureFixture[str]) -> dict:
    capfd.readouterr()
    code = invoke(["doctor", "--container", name, "--xsched-prefix", case.prefix, "--no-torch", "--backend", "sim",
                   "--json"])
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err, captured.err
    assert code == 1, captured.out
    return json.loads(captured.out)


@pytest.mark.parametrize("placed", CASES, indirect=True, ids=[case.name for case in CASES])
def test_the_doctor_names_the_file_the_real_loader_took_and_the_step(placed, capfd) -> None:
    name, target, case = placed
    env = {"PATH": (f"{case.prefix}/bin:" if case.program else "") + SYSTEM_PATH, **case.env}
    stored_env.save(target, env, env, {"note": "test_doctor_search_steps"})
    document = _doctor(name, case, capfd)
    assert document["environment_source"] == "stored by doctor --fix"
    failing = [f for f in document["findings"] if f["id"] == "shim-loads" and f["severity"] == "fail"]
    assert len(failing) == 1, [(f["id"], f["severity"], f["title"], f["detail"][:600]) for f in document["findings"]]
    data = failing[0]["data"]

    # The real loader: the same program (python3, or the case's program first on PATH) with the shim
    # preloaded before the user's preloads, as the doctor judges it.
    program = f"{case.prefix}/bin/python3" if case.program else "/usr/bin/python3"
    preload = " ".join([case.shim_path, *case.env.get("LD_PRELOAD", "").split()])
    real = target.exec([program, "-c", "pass"], env={**env, "LD_PRELOAD": preload, "LD_DEBUG": "libs,files"},
                       timeout=60)
    assert real.exit_code != 0 and f"{case.shim_path}: undefined symbol: {TYPEINFO}" in real.stderr, real.stderr
    requests = real_requests(real.stderr)
    taken = requests.get(("libhalhip.so", case.shim_path))

    assert data["symbol"] == TYPEINFO and data["needed_by"] == case.shim_path
    # The path as the loader opened it ($ORIGIN expansions are not normalized, by either).
    assert posixpath.normpath(data["loaded_provider"]) == case.stale, data
    assert data["loaded_provider_reason"].startswith(case.model_reason), data["loaded_provider_reason"]
    assert "underlinked" not in failing[0]["detail"]
    assert data["expected_provider"] == f"{case.prefix}/lib/libhalhip.so"
    if case.real_label is None:
        # Reused without a search: the real loader never looked for libhalhip.so for the shim, and the
        # file the doctor names is one it mapped for another request.
        assert taken is None, taken
        assert any(path == data["loaded_provider"] for path, _ in requests.values()), requests
    else:
        assert taken is not None, real.stderr
        assert taken[0] == data["loaded_provider"], (taken, data)
        assert taken[1] is not None and taken[1].startswith(case.real_label), taken
    # The XSched libraries the shim got come from two builds: the finding names each file.
    libraries = {entry["path"]: entry for entry in data["xsched_libraries"]}
    assert data["mixed_builds"] and case.shim_path in libraries and data["loaded_provider"] in libraries, data


def test_xsched_libraries_from_different_builds_are_one_finding_naming_each_file(steps_container, capfd) -> None:
    """The shim loads, but its libpreempt.so is an older build's (built for another prefix), found first on
    LD_LIBRARY_PATH: one shim-loads warning names each XSched file, where the real loader took it from."""
    name, target = steps_container
    prefix, old = f"{ROOT}/mixed", f"{ROOT}/old-preempt"
    env = {"PATH": SYSTEM_PATH, "LD_LIBRARY_PATH": old}
    # A complete install (its xserver too), so that only what this test is about fails.
    _run(target, ["sh", "-c", f"mkdir -p {prefix}/bin && cp {sandbox_scenarios.XSERVER} {prefix}/bin/xserver"])
    stored_env.save(target, env, env, {"note": "test_doctor_search_steps"})
    try:
        capfd.readouterr()
        code = invoke(["doctor", "--container", name, "--xsched-prefix", prefix, "--no-torch", "--backend", "sim",
                       "--json"])
        document = json.loads(capfd.readouterr().out)
    finally:
        stored_env.remove(target)
    shim_loads = [f for f in document["findings"] if f["id"] == "shim-loads"]
    assert [f["severity"] for f in shim_loads] == ["warn"], shim_loads
    finding = shim_loads[0]
    assert "different builds or prefixes" in finding["title"]
    # The older libpreempt.so shadowing the install's fails its own check; nothing else fails (sim backend).
    assert code == 1 and {f["id"] for f in document["findings"] if f["severity"] in ("fail", "crash")} == \
        {"duplicates"}, [f for f in document["findings"] if f["severity"] in ("fail", "crash")]
    libraries = {entry["library"]: entry for entry in finding["data"]["xsched_libraries"]}

    shim = f"{prefix}/lib/libshimhip.so"
    real = target.exec(["python3", "-c", "pass"], env={**env, "LD_PRELOAD": shim, "LD_DEBUG": "libs,files"},
                       timeout=60)
    assert real.exit_code == 0, real.stderr
    requests = real_requests(real.stderr)
    for library in ("libhalhip.so", "libpreempt.so"):
        path, label = requests[(library, shim)]
        assert libraries[library]["path"] == path, (library, libraries[library], path)
        step = "LD_LIBRARY_PATH" if label == "LD_LIBRARY_PATH" else "RUNPATH of libshimhip.so"
        assert step in libraries[library]["reached_by"], (libraries[library], label)
    assert libraries["libshimhip.so"]["path"] == shim and libraries["libshimhip.so"]["built_for"] == []
    assert libraries["libpreempt.so"]["path"] == f"{old}/libpreempt.so"
    assert libraries["libpreempt.so"]["built_for"] == [OLD_BUILD_LIB]
    for entry in libraries.values():  # the report names each file whole
        assert entry["path"] in finding["detail"]
    assert f"its RUNPATH names {OLD_BUILD_LIB}, not {old} where it lies" in finding["detail"]
