"""The ``shim-loads`` findings, built from one loader-model report: one finding per cause.

Missing libraries are grouped by the object that needs them; version problems and undefined symbols
by (needing object, loaded provider, expected provider), and a version problem takes in the undefined
symbols of the same three files (one stale copy explains both). Which file the loader took, and why,
comes from the model's own resolution (``loader_explain``) whatever search step found it. When the
XSched libraries loaded for the shim come from different builds or prefixes, the finding names each
file and where it came from.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from xsched_ops.doctor import loader_explain
from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.finding_data import (
    MissingLibraryData,
    ShimLoadsData,
    SymbolEntry,
    UndefinedSymbolsData,
    VersionMismatchData,
    XSchedLibrary,
)
from xsched_ops.doctor.findings import Finding, fail, ok, warn
from xsched_ops.loader import LoadReport, find_definers
from xsched_ops.loader.model import NotFound, UnresolvedSymbol, VersionProblem
from xsched_ops.xsched import platforms

if TYPE_CHECKING:
    from xsched_ops.doctor.context import DoctorContext

FIX_TEXT = "run with the environment `xsched-ops env` computes (doctor --fix stores it for xsched-ops runs)"

# Ranks of the symbols inside a finding: what tells the cause first (a class's typeinfo and vtable
# name the class whose definition is missing), then the rest by name.
_SYMBOL_RANK = (("typeinfo for ", 0), ("typeinfo name for ", 1), ("vtable for ", 2), ("VTT for ", 3),
                ("construction vtable for ", 3))


def _symbol_rank(demangled: str) -> int:
    return next((rank for prefix, rank in _SYMBOL_RANK if demangled.startswith(prefix)), 4)


def _entry(symbol: UnresolvedSymbol) -> SymbolEntry:
    return SymbolEntry(symbol=symbol.symbol, demangled=symbol.demangled, version=symbol.version, when=symbol.when,
                       loader_message=symbol.message)


def _symbol_line(entry: SymbolEntry) -> str:
    """``  typeinfo for xsched::hip::HipCommand (_ZTIN6xsched3hip10HipCommandE)``: both names, whole."""
    mangled, demangled = entry.symbol, entry.demangled
    return f"  {demangled} ({mangled})" if demangled and demangled != mangled else f"  {mangled}"


def _symbols_block(entries: list[SymbolEntry], needed_by: str, note: str = "") -> str:
    at_startup = sum(1 for entry in entries if entry.when == "startup")
    versions = sorted({entry.version for entry in entries if entry.version})
    head = (f"undefined in {posixpath.basename(needed_by)} ({len(entries)} symbol{'s' if len(entries) != 1 else ''}"
            + (f", version {', '.join(versions)}" if versions else "")
            + (f"; {at_startup} bound at startup: the process dies before main" if at_startup else
               "; bound lazily: the process dies at the first call")
            + ")" + note + ":")
    return "\n".join([head, *(_symbol_line(entry) for entry in entries)])


def _group_title(entries: list[SymbolEntry], needed_by: str) -> str:
    first = entries[0]
    named = first.demangled if first.demangled and first.demangled != first.symbol else first.symbol
    if len(entries) == 1:
        return f"{posixpath.basename(needed_by)}: undefined symbol {first.symbol} ({named})"
    return f"{posixpath.basename(needed_by)}: {len(entries)} undefined symbols ({named} and {len(entries) - 1} more)"


def _sorted(group: list[UnresolvedSymbol]) -> list[UnresolvedSymbol]:
    return sorted(group, key=lambda symbol: (_symbol_rank(symbol.demangled), symbol.demangled or symbol.symbol))


def _xsched_names(context: DoctorContext) -> set[str]:
    install = context.install
    return {install.platform.shim, install.platform.hal, platforms.common().preempt_lib} if install else set()


def _version_provider(context: DoctorContext, problem: VersionProblem, folders: list[str]) -> str | None:
    """A file named like the loaded provider, on the search folders, that does define the missing version."""
    from xsched_ops.elf.reader import read_elf

    for folder in folders:
        candidate = posixpath.join(folder, problem.file)
        if candidate == problem.provider or not context.fs.isfile(candidate):
            continue
        try:
            definitions = read_elf(context.fs, candidate).version_definitions
        except Exception:
            continue
        if any(d.name == problem.version for d in definitions):
            return candidate
    return None


class _MixedBuildsNote:
    """The XSched libraries loaded for the shim; shown once, in the first finding they explain."""

    def __init__(self, context: DoctorContext, report: LoadReport) -> None:
        install = context.install
        assert install is not None
        ignored = [*install.platform.runtime_search_dirs, *platforms.SYSTEM_LIB_DIRS]
        order = [install.platform.shim, install.platform.hal, platforms.common().preempt_lib]
        self.files = loader_explain.xsched_files(report, context.fs, order, ignored)
        self.mixed = loader_explain.mixed_builds(self.files)
        self.shown = False

    def lines(self, provider_lacks_symbols: bool) -> list[str]:
        """The block for a finding (once), when the files are mixed or a loaded XSched copy lacks what the
        shim was linked against (which only another build of it can)."""
        if self.shown or not (self.mixed or provider_lacks_symbols) or not self.files:
            return []
        self.shown = True
        return ["the XSched libraries loaded for the shim come from different builds or prefixes:",
                *(file.line() for file in self.files)]

    def data(self) -> dict[str, object]:
        return {"xsched_libraries": [XSchedLibrary(**file.as_dict()) for file in self.files],  # type: ignore[arg-type]
                "mixed_builds": self.mixed}


def _missing_finding(context: DoctorContext, needed_by: str, group: list[tuple[NotFound, str | None]],
                     symbols: list[UnresolvedSymbol], fix_commands: list[str]) -> Finding:
    names = [missing.name for missing, _ in group]
    expected_paths = [expected for _, expected in group]
    first, expected = group[0]
    lines = [f"{missing.name}: {missing.message}; tried {len(missing.tried)} paths: "
             + ", ".join(s.path for s in missing.tried) for missing, _ in group]
    if expected:
        lines.append("a copy lies outside the search path: " + ", ".join(p for p in expected_paths if p))
    entries = [_entry(symbol) for symbol in _sorted(symbols)]
    if entries:
        lines.append(_symbols_block(entries, needed_by, " while it is missing"))
    data = MissingLibraryData(
        needed=first.name, needed_libraries=names, needed_by=needed_by, expected_provider=expected,
        expected_providers=expected_paths, tried=[step.path for step in first.tried],
        tried_by_library={missing.name: [step.path for step in missing.tried] for missing, _ in group})
    if entries:
        data = data.model_copy(update={"symbol": entries[0].symbol, "demangled": entries[0].demangled,
                                       "symbols": entries})
    return fail(CheckId.SHIM_LOADS, "loader",
                f"{', '.join(names)}, needed by {posixpath.basename(needed_by)}, "
                + ("is" if len(names) == 1 else "are") + " not found",
                "\n".join(lines),
                "install the missing library (rebuild XSched: `make install`)" if expected is None else FIX_TEXT,
                fix_commands if expected else [], data=data)


def shim_loads_findings(context: DoctorContext, report: LoadReport, folders: list[str],
                        fix_commands: list[str]) -> list[Finding]:
    """The findings of ``shim-loads`` for ``report`` (python3 under the user's environment with XSched
    reachable); ``folders``: where a file that does define a missing symbol is looked for."""
    install = context.install
    assert install is not None
    xsched_names = _xsched_names(context)
    note = _MixedBuildsNote(context, report)
    findings: list[Finding] = []

    def is_xsched(path: str) -> bool:
        return posixpath.basename(path) in xsched_names

    # (needing object, folder where copies lie) -> the missing libraries
    missing_groups: dict[tuple[str, str | None], list[tuple[NotFound, str | None]]] = {}
    for missing in report.not_found:
        if is_xsched(missing.needed_by):
            expected = next((posixpath.join(f, missing.name) for f in folders
                             if context.fs.isfile(posixpath.join(f, missing.name))), None)
            key = (missing.needed_by, posixpath.dirname(expected) if expected else None)
            missing_groups.setdefault(key, []).append((missing, expected))

    # (needing object, loaded provider, expected provider) -> symbols, with how each provider was reached
    symbol_groups: dict[tuple[str, str | None, str | None], list[UnresolvedSymbol]] = {}
    reached: dict[tuple[str, str | None, str | None], tuple[loader_explain.Reached | None, str | None]] = {}
    for symbol in report.unresolved_symbols:
        if not is_xsched(symbol.needed_by):
            continue
        expected = symbol.expected_provider.path if symbol.expected_provider else None
        expected_reason = symbol.expected_provider.reason if symbol.expected_provider else None
        if expected is None:
            definers = find_definers(context.fs, symbol.symbol, folders, symbol.version)
            expected = definers[0] if definers else None
        loaded = loader_explain.loaded_provider(report, context.fs, symbol, expected)
        if expected and expected_reason is None:
            # The model lists every copy on the needing object's search path: a file found only by this
            # search lies off that path when the loader did take a copy for the same name.
            expected_reason = (f"not on the search path of {posixpath.basename(symbol.needed_by)}; found in "
                               "the XSched prefix, LD_LIBRARY_PATH and ld.so.conf folders"
                               if loaded is not None and loaded.direct else
                               "defines it (searched the XSched prefix, LD_LIBRARY_PATH, ld.so.conf folders)")
        key = (symbol.needed_by, loaded.path if loaded else None, expected)
        symbol_groups.setdefault(key, []).append(symbol)
        reached.setdefault(key, (loaded, expected_reason))

    for (needed_by, _folder), group in missing_groups.items():
        names = [missing.name for missing, _ in group]
        # Symbols of the same object that nothing loaded defines are what the missing library would
        # have provided (the real loader stops at the library and never names them): the same cause.
        consequences = [key for key in symbol_groups if key[0] == needed_by and key[1] is None
                        and (key[2] is None or posixpath.basename(key[2]) in names)]
        symbols = [symbol for key in consequences for symbol in symbol_groups.pop(key)]
        findings.append(_missing_finding(context, needed_by, group, symbols, fix_commands))

    version_groups: dict[tuple[str, str, str | None], list[VersionProblem]] = {}
    for problem in report.version_problems:
        if problem.severity == "error":
            key = (problem.needed_by, problem.provider, _version_provider(context, problem, folders))
            version_groups.setdefault(key, []).append(problem)
    for (needed_by, provider, expected), problems in version_groups.items():
        versions = list(dict.fromkeys(problem.version for problem in problems))
        name = problems[0].file
        how = loader_explain.reached(report, needed_by, name)
        provider_reason = how.reason if how is not None and how.path == provider else \
            next((obj.reason for obj in report.objects if obj.path == provider), None)
        entries = [_entry(symbol) for symbol in _sorted(symbol_groups.pop((needed_by, provider, expected), []))]
        lines = [problem.message for problem in problems]
        lines.append(f"the loader picked {provider}" + (f" ({provider_reason})" if provider_reason else "")
                     + (f"; {expected} does define {', '.join(versions)}" if expected else ""))
        lines += note.lines(is_xsched(provider))
        if entries:
            lines.append(_symbols_block(entries, needed_by))
        data = VersionMismatchData(version=versions[0], versions=versions, needed_by=needed_by,
                                   loaded_provider=provider, loaded_provider_reason=provider_reason,
                                   expected_provider=expected, **note.data())  # type: ignore[arg-type]
        if entries:
            data = data.model_copy(update={"symbol": entries[0].symbol, "demangled": entries[0].demangled,
                                           "symbols": entries})
        findings.append(fail(CheckId.SHIM_LOADS, "loader",
                             f"version {', '.join(versions)} not found in {provider}"
                             + (f" ({len(entries)} symbols of {posixpath.basename(needed_by)} undefined with it)"
                                if entries else ""),
                             "\n".join(lines), FIX_TEXT, fix_commands, data=data))

    for key, group in symbol_groups.items():
        needed_by, _loaded_path, expected = key
        loaded, expected_reason = reached[key]
        ordered = _sorted(group)
        first = ordered[0]
        entries = [_entry(symbol) for symbol in ordered]
        them = "it" if len(entries) == 1 else "them"
        expected_text = (f"; {expected} does" + (f" ({expected_reason})" if expected_reason else "")) if expected else ""
        if loaded is not None and loaded.direct:
            why = f"the loader picked {loaded.path} ({loaded.reason}), which does not define {them}" + expected_text
        elif loaded is not None:
            why = (f"{posixpath.basename(needed_by)} has no DT_NEEDED on {posixpath.basename(loaded.path)} "
                   f"(underlinked); the copy loaded for {posixpath.basename(loaded.needed_by)}, {loaded.path} "
                   f"({loaded.reason}), does not define {them} either" + expected_text)
        else:
            why = (f"no object in the global scope defines {them}: {posixpath.basename(needed_by)} "
                   "has no DT_NEEDED on a library that does (underlinked)"
                   + (f"; {expected} does define {them}" if expected else ""))
        lines = [why, *note.lines(loaded is not None and is_xsched(loaded.path)), _symbols_block(entries, needed_by)]
        data = UndefinedSymbolsData(
            symbol=first.symbol, demangled=first.demangled, needed_by=needed_by, version=first.version,
            when="startup" if any(entry.when == "startup" for entry in entries) else first.when,
            loaded_provider=loaded.path if loaded else None, loaded_provider_reason=loaded.reason if loaded else None,
            expected_provider=expected, expected_provider_reason=expected_reason, loader_message=first.message,
            symbols=entries, **note.data())  # type: ignore[arg-type]
        findings.append(fail(CheckId.SHIM_LOADS, "loader", _group_title(entries, needed_by), "\n".join(lines),
                             FIX_TEXT, fix_commands, data=data))
    if findings:
        return findings
    shim = report.object_for(install.shim_path)
    where = f"{install.shim_path}: {shim.reason if shim else 'not in the load list'}"
    data = ShimLoadsData(objects=len(report.objects), **note.data())  # type: ignore[arg-type]
    if note.mixed:
        return [warn(CheckId.SHIM_LOADS, "loader",
                     "the shim loads, but its XSched libraries come from different builds or prefixes",
                     "\n".join([where, *note.lines(False)]),
                     "use one build: put its lib folder first (`xsched-ops env`), or rebuild XSched "
                     "(`make install`) so that every library comes from one prefix", fix_commands, data=data)]
    return [ok(CheckId.SHIM_LOADS, "loader",
               f"the shim loads: {len(report.objects)} objects, every needed library and symbol resolves",
               where, data=data)]
