"""What the loader model reads once and shares: the ld.so.cache (one parse per file version per
process), each symbol table (once per library per process), a global scope's look-ups (once per
scope, not per program), the file system's answers within a batch; and what that must not
change: the reports themselves. Also the ldd command's compact and pretty JSON.

Counts, not times (bench/ldd_usr_bin.py measures): each is counted through a hook.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import subprocess

import pytest

from xsched_ops.cli import invoke
from xsched_ops.elf import dynsym, ldcache, read_elf, read_ld_so_cache
from xsched_ops.loader import analyze, analyze_many, clear_caches, symbols
from xsched_ops.target.fs import HostFS, RootedFS

ENV = {"PATH": "/usr/bin:/bin"}
PROGRAMS = [path for path in (shutil.which(name, path="/usr/bin:/bin") for name in
                              ("true", "false", "ls", "cat", "cp", "grep", "sed", "tar", "find", "sort", "du", "env"))
            if path and os.path.realpath(path) == path or path]
PROGRAMS = sorted({os.path.realpath(path) for path in PROGRAMS if path})

pytestmark = pytest.mark.skipif(not os.path.exists("/etc/ld.so.cache") or len(PROGRAMS) < 4,
                                reason="needs a glibc host with /etc/ld.so.cache and coreutils")


@pytest.fixture(autouse=True)
def cold() -> None:
    clear_caches()


@pytest.fixture
def cache_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ld.so.cache parse, by path (a hook around ``parse_ld_so_cache``)."""
    parses: list[str] = []
    original = ldcache.parse_ld_so_cache

    def counting(data: bytes, path: str = "/etc/ld.so.cache"):
        parses.append(path)
        return original(data, path)

    monkeypatch.setattr(ldcache, "parse_ld_so_cache", counting)
    return parses


def test_ld_so_cache_is_parsed_once_for_many_programs(cache_parses: list[str]) -> None:
    fs = HostFS()
    for program in PROGRAMS:
        analyze(fs, program, ENV, check_symbols=False)
    list(analyze_many(fs, PROGRAMS, ENV))
    analyze(HostFS(), PROGRAMS[0], ENV)  # another file system object for the same files
    assert cache_parses == ["/etc/ld.so.cache"]


def test_a_changed_ld_so_cache_is_parsed_again(cache_parses: list[str], tmp_path) -> None:
    (tmp_path / "etc").mkdir()
    cache_file = tmp_path / "etc" / "ld.so.cache"
    shutil.copyfile("/etc/ld.so.cache", cache_file)
    fs = RootedFS(str(tmp_path))
    first = read_ld_so_cache(fs)
    assert read_ld_so_cache(fs) is first
    assert len(cache_parses) == 1
    # ldconfig writes a new file and renames it over the old one: a new inode.
    replacement = tmp_path / "etc" / "ld.so.cache.new"
    shutil.copyfile("/etc/ld.so.cache", replacement)
    os.replace(replacement, cache_file)
    second = read_ld_so_cache(fs)
    assert len(cache_parses) == 2 and second is not first and second.entries == first.entries
    cache_file.unlink()
    assert read_ld_so_cache(fs).format == "absent"


def test_each_symbol_table_is_read_once_per_process() -> None:
    fs = HostFS()
    before = dynsym.SYMBOL_TABLE_READS
    reports = list(analyze_many(fs, PROGRAMS, ENV))
    read = dynsym.SYMBOL_TABLE_READS - before
    files = {obj.real_path for report in reports for obj in report.objects}
    assert 0 < read <= len(files)
    for program in PROGRAMS:  # again, one by one and in a batch: nothing is read again
        analyze(fs, program, ENV)
    list(analyze_many(HostFS(), PROGRAMS, ENV))
    assert dynsym.SYMBOL_TABLE_READS - before == read


def test_a_global_scope_is_indexed_once_for_every_program_that_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[str, ...]] = []
    original = symbols.ScopeIndex.__init__

    def counting(self, elfs):
        built.append(tuple(sorted(elf.path for elf in elfs)))
        original(self, elfs)

    monkeypatch.setattr(symbols.ScopeIndex, "__init__", counting)
    reports = list(analyze_many(HostFS(), PROGRAMS, ENV))
    scopes = {tuple(sorted(obj.real_path for obj in report.objects[1:])) for report in reports}
    assert len(scopes) < len(PROGRAMS)  # coreutils share their libraries
    counts = collections.Counter(built)
    assert max(counts.values()) == 1  # no set of objects indexed twice
    built.clear()
    list(analyze_many(HostFS(), PROGRAMS, ENV))
    assert built == []  # all known: nothing indexed again


def test_a_batch_asks_the_file_system_each_question_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: collections.Counter[tuple[str, str]] = collections.Counter()

    class CountingFS(HostFS):
        def realpath(self, path: str) -> str:
            calls["realpath", path] += 1
            return super().realpath(path)

        def stat(self, path: str):
            calls["stat", path] += 1
            return super().stat(path)

    reports = list(analyze_many(CountingFS(), PROGRAMS, ENV))
    loaded = sum(len(report.objects) for report in reports)
    assert loaded > 3 * len(PROGRAMS)
    # However many programs load libc and the dynamic linker: a few questions a path (HostFS
    # resolves the path for each stat and open, the model once for the report), not a few a program.
    assert max(calls.values()) <= 5, calls.most_common(3)
    paths = {path for _, path in calls}
    assert sum(count for (kind, _), count in calls.items() if kind == "realpath") <= 5 * len(paths)


def test_a_batch_gives_the_same_reports_as_one_analysis_each() -> None:
    fs = HostFS()
    env = {**ENV, "LD_BIND_NOW": "1"}
    batch = [report.to_dict() for report in analyze_many(fs, PROGRAMS, env)]
    clear_caches()
    single = [analyze(HostFS(), program, env).to_dict() for program in PROGRAMS]
    assert batch == single


def test_to_dict_is_asdict() -> None:
    report = analyze(HostFS(), PROGRAMS[0], ENV)
    assert report.to_dict() == dataclasses.asdict(report)
    assert json.loads(report.to_json()) == json.loads(json.dumps(dataclasses.asdict(report)))


def test_lazy_symbol_table_parts_agree() -> None:
    fs = HostFS()
    report = analyze(fs, PROGRAMS[0], ENV)
    libc = next(obj for obj in report.objects if (obj.soname or "").startswith("libc.so"))
    table = read_elf(fs, libc.path).symbols()
    symbols = table.symbols
    definitions = table.definitions
    assert set(definitions) == set(table.name_index())
    assert all(table.candidates(name) == entries for name, entries in list(definitions.items())[:500])
    assert table.candidates("no_such_symbol_anywhere") == []
    defined = collections.defaultdict(list)
    for symbol in symbols[1:]:
        if symbol.is_defined and symbol.name:
            defined[symbol.name].append(symbol)
    assert defined == definitions
    program = read_elf(fs, PROGRAMS[0]).symbols()
    references = program.references
    assert {reference.symbol.name for reference in references} == {
        symbol.name for symbol in program.symbols[1:] if not symbol.is_defined and symbol.binding != 0 and symbol.name}
    for key, number in program.lookups:
        reference = references[number]
        assert key == (reference.symbol.name, reference.symbol.version, reference.symbol.version_hidden)
        assert reference.symbol.binding != 2 and (reference.at_startup or reference.lazy)


def test_32_bit_tables_decode_as_64_bit_ones(tmp_path) -> None:
    source = tmp_path / "x32.c"
    source.write_text("extern int foo(void); extern int data_sym; int *p = &data_sym;\n"
                      "int bar(void) { return foo() + data_sym; }\nint baz = 3;\n")
    library = tmp_path / "lib32.so"
    built = subprocess.run(["gcc", "-m32", "-shared", "-nostdlib", "-fPIC", str(source), "-o", str(library)],
                           capture_output=True) if shutil.which("gcc") else None
    if built is None or built.returncode != 0:
        pytest.skip("no gcc -m32")
    elf = read_elf(HostFS(), str(library))
    table = elf.symbols()
    assert elf.class_name == "ELFCLASS32" and elf.machine_name == "Intel 80386"
    assert sorted(table.definitions) == ["bar", "baz", "p"]
    found = {r.symbol.name: (r.at_startup, r.lazy) for r in table.references}
    assert found == {"data_sym": (True, False), "foo": (False, True)}


def test_ldd_json_is_compact_unless_pretty(capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke(["ldd", "--local", "--json", PROGRAMS[0], PROGRAMS[1]]) == 0
    compact = capsys.readouterr().out
    assert invoke(["ldd", "--local", "--json", "--pretty", PROGRAMS[0], PROGRAMS[1]]) == 0
    pretty = capsys.readouterr().out
    assert compact.count("\n") == 1 and ": " not in compact and ", " not in compact.split('"reports"')[0]
    assert pretty.count("\n") > 50 and '\n  "reports": [' in pretty
    assert json.loads(compact) == json.loads(pretty)
    assert len(json.loads(compact)["reports"]) == 2
