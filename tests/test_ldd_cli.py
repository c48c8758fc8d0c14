"""`xsched-ops ldd` end to end on this host (--local) with the seed's layout."""

from __future__ import annotations

import json

import pytest
from loader_fixtures import build_xsched_like, have_toolchain

from xsched_ops.cli import invoke

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs gcc, g++ and the x86-64 loader")


@pytest.fixture(scope="module")
def xsched(tmp_path_factory):
    return build_xsched_like(tmp_path_factory.mktemp("cli"))


def test_ldd_tree_explains_the_seed_failure(xsched, capsys):
    code = invoke(["ldd", "--local", "/bin/true", "--env", f"LD_LIBRARY_PATH={xsched['stale_dir']}:{xsched['lib']}",
                   "--env", f"LD_PRELOAD={xsched['shim']}"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 1
    # one line on stderr says why, whatever stdout is (a file, JSON)
    assert captured.err == ("xsched-ops: /bin/true would not start: symbol lookup error: "
                            f"{xsched['shim']}: undefined symbol: _ZTIN6xsched3hip10HipCommandE\n")
    assert f"libhalhip.so => {xsched['stale_hal']} [found via LD_LIBRARY_PATH entry 1]" in out
    assert "_ZTIN6xsched3hip10HipCommandE (typeinfo for xsched::hip::HipCommand)" in out
    assert f"defined in: {xsched['hal']}" in out
    assert "symbol lookup error" in out


def test_ldd_json_schema(xsched, capsys):
    code = invoke(["ldd", "--json", "/bin/true", "--env", f"LD_PRELOAD={xsched['shim']}"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["version"] == 1
    report = document["reports"][0]
    hal = next(o for o in report["objects"] if o["requested_name"] == "libhalhip.so")
    assert hal["reason"] == "RUNPATH of libshimhip.so"
    assert report["would_start"] is True


def test_ldd_errors_are_one_line(capsys, tmp_path):
    text = tmp_path / "notelf"
    text.write_text("hello, this is a text file and not an ELF object at all\n" * 3)
    assert invoke(["ldd", str(text)]) == 19
    err = capsys.readouterr().err
    assert "invalid ELF header" in err and "Traceback" not in err
    assert invoke(["ldd", "--env", "NOVALUE", "/bin/true"]) == 2
