"""The role's runtime load (spec ``runtime``): a real shared object compiled here, the real loader.

The library is found by name through LD_LIBRARY_PATH, as the libpath route finds the shim's
softlink; its entry point's return value and defining file come back in the record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from loader_fixtures import compile_shared, have_toolchain
from pydantic import ValidationError

from xsched_ops.profiles import load_profile
from xsched_ops.workload import SOURCE_DIR
from xsched_ops.workload.spec import build_spec
from xsched_ops.xsched import platforms

sys.path.insert(0, str(SOURCE_DIR.parent))
from xsched_ops_workload.errors import SpecError  # noqa: E402
from xsched_ops_workload.spec import parse_spec  # noqa: E402

needs_toolchain = pytest.mark.skipif(not have_toolchain(), reason="needs gcc and the glibc loader")

RUNTIME_SOURCE = "int fakeInit(unsigned int flags) { return 40 + (int)flags + 2; }\n"
LOAD_SCRIPT = (
    "import json, sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from xsched_ops_workload.runtime import load_runtime\n"
    "from xsched_ops_workload.errors import WorkloadError\n"
    "try:\n"
    "    print(json.dumps(load_runtime(sys.argv[2] or None, sys.argv[3], sys.argv[4])))\n"
    "except WorkloadError as err:\n"
    "    print(json.dumps({'error': str(err)}))\n"
)


def load_in_subprocess(library: str | None, symbol: str, library_path: Path, *, preload: Path | None = None,
                       file_prefix: str = "") -> dict:
    env = {**os.environ, "LD_LIBRARY_PATH": str(library_path)}
    if preload is not None:
        env["LD_PRELOAD"] = str(preload)
    result = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(SOURCE_DIR.parent), library or "", symbol,
                             file_prefix],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_toolchain
def test_runtime_is_loaded_by_name_through_a_softlink_and_its_entry_point_called(tmp_path: Path) -> None:
    real = compile_shared(RUNTIME_SOURCE, tmp_path / "lib" / "libfakeshim.so", soname="libfakeshim.so")
    (tmp_path / "lib" / "libfakert.so.1").symlink_to(real.name)
    record = load_in_subprocess("libfakert.so.1", "fakeInit", tmp_path / "lib")
    assert record["init_result"] == 42
    assert record["init_defined_in"] == str(tmp_path / "lib" / "libfakert.so.1")
    assert record["init_defined_in_real"] == str(real)
    assert record["mapped_files"] == []  # the file behind the softlink is not named libfakert*


@needs_toolchain
def test_a_runtime_that_cannot_be_loaded_or_lacks_the_entry_point_is_a_clear_error(tmp_path: Path) -> None:
    compile_shared(RUNTIME_SOURCE, tmp_path / "lib" / "libfakert.so.1", soname="libfakert.so.1")
    missing = load_in_subprocess("libnothere.so.1", "fakeInit", tmp_path / "lib")
    assert missing["error"].startswith("cannot load the runtime libnothere.so.1: ")
    assert "cannot open shared object file" in missing["error"]
    no_symbol = load_in_subprocess("libfakert.so.1", "otherInit", tmp_path / "lib")
    assert no_symbol["error"] == "the runtime libfakert.so.1 has no otherInit"
    found = load_in_subprocess("libfakert.so.1", "fakeInit", tmp_path / "lib")
    assert found["mapped_files"] == [str(tmp_path / "lib" / "libfakert.so.1")]


@needs_toolchain
def test_without_a_library_the_entry_point_comes_from_the_process_as_a_preload_left_it(tmp_path: Path) -> None:
    shim = compile_shared(RUNTIME_SOURCE, tmp_path / "lib" / "libfakeshim.so", soname="libfakeshim.so")
    # The "shim" is preloaded: the process's global scope gives its entry point.
    record = load_in_subprocess(None, "fakeInit", tmp_path, preload=shim, file_prefix="libfakeshim")
    assert record["library"] is None and record["init_result"] == 42
    assert record["init_defined_in_real"] == str(shim)
    assert record["mapped_files"] == [str(shim)]
    # Nothing preloaded: nothing in the process has the entry point, which is recorded, not raised.
    missing = load_in_subprocess(None, "fakeInit", tmp_path)
    assert missing["init_result"] is None and "not in the process" in missing["note"]


def _spec(runtime) -> dict:
    profile = load_profile("intensive")
    spec = build_spec(profile, backend="sim", output_dir="/tmp/x", run_id="r", runtime=runtime)
    return spec


def test_build_spec_gives_every_role_the_runtime_and_the_workload_reads_it() -> None:
    spec = _spec({"library": "libcuda.so.1", "init_symbol": "cuInit"})
    parsed = parse_spec(spec)
    assert [(role.runtime.library, role.runtime.init_symbol) for role in parsed.roles] == [
        ("libcuda.so.1", "cuInit"), ("libcuda.so.1", "cuInit")]
    preload = parse_spec(_spec({"library": None, "init_symbol": "hipInit", "file_prefix": "libamdhip64.so"}))
    assert {(role.runtime.library, role.runtime.file_prefix) for role in preload.roles} == {
        (None, "libamdhip64.so")}
    assert all(role.runtime is None for role in parse_spec(_spec(None)).roles)


@pytest.mark.parametrize("runtime, words", [
    ({"library": "libcuda.so.1"}, "missing key 'init_symbol'"),
    ({"library": "", "init_symbol": "cuInit"}, "library must be a name or path, or null"),
    ({"library": "libcuda.so.1", "init_symbol": "cu Init"}, "init_symbol must be a C identifier"),
    ({"library": None, "init_symbol": "cuInit", "file_prefix": 3}, "file_prefix must be a string"),
    ("libcuda.so.1", "key 'runtime' must be dict"),
])
def test_a_bad_runtime_in_the_spec_is_refused_with_its_place(runtime, words: str) -> None:
    spec = _spec(None)
    spec["roles"][0]["runtime"] = runtime
    with pytest.raises(SpecError, match="roles\\[0\\]") as raised:
        parse_spec(spec)
    assert words in str(raised.value)


def test_platform_application_soname_must_be_one_of_the_softlinks() -> None:
    entry = platforms.get("cuda").model_dump()
    assert platforms.Platform.model_validate(entry).application_soname == "libcuda.so.1"
    entry["application_soname"] = "libcuda.so.550"
    with pytest.raises(ValidationError, match="must be one of the softlinks"):
        platforms.Platform.model_validate(entry)
