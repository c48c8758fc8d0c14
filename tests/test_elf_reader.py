"""The ELF reader on real files compiled here, compared with readelf/ldconfig views."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from loader_fixtures import build_xsched_like, compile_shared, have_toolchain

from xsched_ops.elf import (
    clear_cache,
    demangle_builtin,
    demangle_many,
    read_elf,
    read_ld_so_cache,
    read_ld_so_conf,
)
from xsched_ops.errors import ElfError
from xsched_ops.target.fs import HostFS, RootedFS

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs gcc, g++ and the x86-64 loader")


@pytest.fixture(scope="module")
def xsched(tmp_path_factory):
    return build_xsched_like(tmp_path_factory.mktemp("elf"))


def test_dynamic_view_of_the_shim(xsched):
    shim = read_elf(HostFS(), str(xsched["shim"]))
    assert shim.soname == "libshimhip.so"
    assert "libhalhip.so" in shim.needed and "libpreempt.so" in shim.needed
    assert shim.runpath == (str(xsched["lib"]),)
    assert shim.rpath is None
    assert shim.machine == 62 and shim.elf_class == 2
    assert any(need.file == "libc.so.6" for need in shim.version_needs)


def test_symbols_bulk_decoded_with_binding_and_versions(xsched):
    hal = read_elf(HostFS(), str(xsched["hal"])).symbols()
    typeinfo = hal.definitions["_ZTIN6xsched3hip10HipCommandE"][0]
    assert typeinfo.binding_name in ("GLOBAL", "WEAK") and typeinfo.type_name == "OBJECT"
    shim_table = read_elf(HostFS(), str(xsched["shim"])).symbols()
    refs = {ref.symbol.name: ref for ref in shim_table.references}
    assert refs["_ZTIN6xsched3hip10HipCommandE"].at_startup  # data relocation in the shim's typeinfo
    assert not refs["_ZTIN6xsched3hip10HipCommandE"].symbol.is_defined
    # Compare the whole table with readelf's count of .dynsym entries.
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(xsched["shim"])], capture_output=True, text=True).stdout
    count = int(out.split("contains ")[1].split()[0])
    assert len(shim_table.symbols) == count


def test_section_headers_stripped_gives_the_same_view(xsched, tmp_path):
    """Without section headers (e_shoff=e_shnum=0), DT_GNU_HASH counts the symbols."""
    copy = tmp_path / "libhal_noshdr.so"
    data = bytearray(xsched["hal"].read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<HH", data, 0x3C, 0, 0)  # e_shnum, e_shstrndx
    copy.write_bytes(bytes(data))
    original = read_elf(HostFS(), str(xsched["hal"]))
    stripped = read_elf(HostFS(), str(copy))
    assert stripped.needed == original.needed and stripped.soname == original.soname
    assert [s.name for s in stripped.symbols().symbols] == [s.name for s in original.symbols().symbols]


def test_version_definitions_and_needs(tmp_path):
    script = tmp_path / "v.map"
    script.write_text("XS_1.0 { global: old_api; local: *; };\nXS_2.0 { global: new_api; } XS_1.0;\n")
    lib = compile_shared("int old_api(void){return 1;} int new_api(void){return 2;}", tmp_path / "libv.so",
                         soname="libv.so", flags=[f"-Wl,--version-script={script}"])
    elf = read_elf(HostFS(), str(lib))
    assert [d.name for d in elf.version_definitions] == ["libv.so", "XS_1.0", "XS_2.0"]
    assert elf.version_definitions[0].is_base
    table = elf.symbols()
    assert table.definitions["new_api"][0].version == "XS_2.0"
    assert table.definitions["old_api"][0].version == "XS_1.0"


def test_not_elf_and_cache_invalidation(tmp_path):
    text = tmp_path / "libtext.so"
    text.write_text("/* GNU ld script */ GROUP ( libc.so.6 )\n")
    with pytest.raises(ElfError, match="invalid ELF header"):
        read_elf(HostFS(), str(text))
    lib = compile_shared("int a(void){return 1;}", tmp_path / "liba.so", soname="liba.so")
    assert read_elf(HostFS(), str(lib)).soname == "liba.so"
    compile_shared("int a(void){return 1;}", tmp_path / "liba.so", soname="liba.so.2")
    assert read_elf(HostFS(), str(lib)).soname == "liba.so.2"  # new inode/mtime: not the cached view
    clear_cache()


def test_rooted_fs_reads_inside_the_root(xsched, tmp_path):
    root = tmp_path / "root"
    (root / "opt").mkdir(parents=True)
    shutil.copy(xsched["hal"], root / "opt" / "libhalhip.so")
    (root / "opt" / "libamdhip64.so").symlink_to("/opt/libhalhip.so")
    elf = read_elf(RootedFS(str(root)), "/opt/libamdhip64.so")
    assert elf.soname == "libhalhip.so"


def test_big_library_reads_only_ranges():
    path = "/lib/x86_64-linux-gnu/libstdc++.so.6"
    elf = read_elf(HostFS(), path)
    before = elf.bytes_read
    elf.symbols()
    assert before < 64 * 1024
    assert elf.bytes_read < elf.file_size / 2


def test_ld_so_cache_matches_ldconfig():
    cache = read_ld_so_cache(HostFS())
    assert cache.format in ("new", "old+new")
    printed = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    count = int(printed.splitlines()[0].split()[0])
    assert len(cache.entries) == count
    first = printed.splitlines()[1].split(" => ")[1].strip()
    assert cache.entries[0].path == first


def test_ld_so_conf_follows_includes(tmp_path):
    (tmp_path / "etc" / "ld.so.conf.d").mkdir(parents=True)
    (tmp_path / "etc" / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n/opt/first\n")
    (tmp_path / "etc" / "ld.so.conf.d" / "b.conf").write_text("/opt/b # comment\n")
    (tmp_path / "etc" / "ld.so.conf.d" / "a.conf").write_text("/opt/a\n")
    assert read_ld_so_conf(RootedFS(str(tmp_path))) == ["/opt/a", "/opt/b", "/opt/first"]


def test_demangle():
    assert demangle_builtin("_ZTIN6xsched3hip10HipCommandE") == "typeinfo for xsched::hip::HipCommand"
    assert demangle_builtin("_ZTVN6xsched3hip10HipCommandE") == "vtable for xsched::hip::HipCommand"
    assert demangle_builtin("_ZTSN6xsched3hip10HipCommandE") == "typeinfo name for xsched::hip::HipCommand"
    assert demangle_builtin("plain") == "plain"
    names = demangle_many(["_ZTIN6xsched3hip10HipCommandE", "_ZN6xsched3hip10HipCommandD2Ev"])
    assert names["_ZN6xsched3hip10HipCommandD2Ev"] == "xsched::hip::HipCommand::~HipCommand()"
