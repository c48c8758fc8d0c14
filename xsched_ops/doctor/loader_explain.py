"""How the loader reached the files a loader finding names, read from the loader model's own resolution.

The model records, for every DT_NEEDED entry and preload, which file satisfied it and why (its
edges and loaded objects); whichever search step found the file (an RPATH, LD_LIBRARY_PATH, a
RUNPATH, ld.so.cache, a default folder, a preload, a name already loaded by SONAME), the doctor's
explanation is taken from there, never searched for again. So the doctor names the file the loader
took for a symbol's library even when no other copy lies on the search path.

Also here: which XSched libraries were loaded for the shim and where each came from, to tell a
mix of builds or prefixes (the usual meaning of an undefined ``typeinfo for xsched::hip::HipCommand``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from xsched_ops.loader import LoadReport
from xsched_ops.loader.model import UnresolvedSymbol
from xsched_ops.target.fs import TargetFS


@dataclass(frozen=True)
class Reached:
    """How the loader satisfied one request: ``name`` asked for by ``needed_by`` (a DT_NEEDED entry, or
    the program for a preload) led to the file at ``path``, for ``reason``."""

    name: str
    needed_by: str
    path: str
    reason: str
    direct: bool = True  # False: a copy in the global scope that another object's request loaded


def reached(report: LoadReport, needed_by: str, name: str) -> Reached | None:
    """How ``needed_by``'s request for ``name`` was satisfied (None: not asked for, or not found)."""
    for edge in report.edges:
        if edge.needed_by == needed_by and edge.name == name and edge.path is not None:
            return Reached(name, needed_by, edge.path, _reason(report, edge.name, edge.path, edge.reused))
    return None


def _reason(report: LoadReport, name: str, path: str, reused: bool) -> str:
    """The model's reason for a request: the search step that found the file, or, for a request the
    loader answered without searching, the object it reused and why that object was loaded."""
    loaded = next((obj for obj in report.objects if obj.path == path), None)
    if loaded is None:  # the dynamic linker itself (not in the global scope's list)
        return "the dynamic linker itself"
    if not reused:
        return loaded.reason
    if name == loaded.requested_name:
        return f"already loaded ({loaded.reason})"
    if name == loaded.soname:
        return f"already loaded as {loaded.path} ({loaded.reason}), whose SONAME is {name}"
    return f"already loaded as {loaded.path} ({loaded.reason}): the same file"


def _soname(fs: TargetFS, path: str) -> str | None:
    from xsched_ops.elf.reader import read_elf

    try:
        return read_elf(fs, path).soname
    except Exception:  # unreadable or not ELF: only its file name names it then
        return None


def provider_names(fs: TargetFS, symbol: UnresolvedSymbol, expected: str | None) -> list[str]:
    """The library names that should have provided ``symbol``: the file its version names, and the
    file name and SONAME of a file that does define it."""
    names: list[str] = []
    if symbol.version_file:
        names.append(symbol.version_file)
    if expected:
        names.append(posixpath.basename(expected))
        soname = _soname(fs, expected)
        if soname:
            names.append(soname)
    return list(dict.fromkeys(names))


def loaded_provider(report: LoadReport, fs: TargetFS, symbol: UnresolvedSymbol, expected: str | None) -> Reached | None:
    """The file the loader took for the library that should have defined ``symbol``, and why.

    The model's own choice (``symbol.loaded_provider``) first; else the needing object's DT_NEEDED
    entry named like the file that does define it; else a copy of that library that another object's
    request put in the global scope (the needing object itself does not ask for it: underlinked).
    None when no such library was loaded at all.
    """
    needer = next((obj for obj in report.objects if obj.path == symbol.needed_by), None)
    needed = needer.needed if needer is not None else ()
    if symbol.loaded_provider is not None:
        for name in needed:
            found = reached(report, symbol.needed_by, name)
            if found is not None and found.path == symbol.loaded_provider.path:
                return found
    names = provider_names(fs, symbol, expected)
    for name in names:
        if name in needed:
            found = reached(report, symbol.needed_by, name)
            if found is not None:
                return found
    for obj in report.objects:
        if obj.kind in ("executable", "interpreter") or obj.path == symbol.needed_by:
            continue
        if posixpath.basename(obj.path) in names or (obj.soname and obj.soname in names):
            return Reached(obj.requested_name, obj.needed_by or report.executable, obj.path, obj.reason, direct=False)
    if symbol.loaded_provider is not None:  # named by the model, though no edge of the needer led to it
        return Reached(posixpath.basename(symbol.loaded_provider.path), symbol.needed_by, symbol.loaded_provider.path,
                       symbol.loaded_provider.reason)
    return None


# ---------------------------------------------------------------------------------------------
# Mixed builds: the XSched libraries loaded for the shim, each with where it came from
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class XSchedFile:
    library: str          # the XSched library it plays: libshimhip.so, libhalhip.so, libpreempt.so
    path: str             # the file the loader took
    folder: str           # the folder it really lies in (symbolic links resolved)
    reason: str           # how the loader reached it
    search_path: tuple[str, ...]  # its own RUNPATH (or RPATH) entries, $ORIGIN expanded
    foreign_entries: tuple[str, ...]  # entries naming another XSched lib folder than its own: another build's prefix

    def as_dict(self) -> dict[str, object]:
        return {"library": self.library, "path": self.path, "folder": self.folder, "reached_by": self.reason,
                "search_path": list(self.search_path), "built_for": list(self.foreign_entries)}

    def line(self) -> str:
        text = f"  {self.library}: {self.path} ({self.reason})"
        if self.foreign_entries:
            text += f"; its RUNPATH names {', '.join(self.foreign_entries)}, not {self.folder} where it lies"
        return text


def _expand_origin(entry: str, folder: str) -> str:
    # Only $ORIGIN: XSched's builds set RUNPATH to PREFIX/lib or $ORIGIN-relative folders.
    expanded = entry.replace("${ORIGIN}", folder).replace("$ORIGIN", folder)
    return posixpath.normpath(expanded) if expanded.startswith("/") else expanded


def xsched_files(report: LoadReport, fs: TargetFS, library_names: Iterable[str],
                 ignored_folders: Iterable[str] = ()) -> list[XSchedFile]:
    """The loaded objects that are XSched libraries (by file name or SONAME), in load order, each with
    how the loader reached it and the RUNPATH/RPATH entries that name another XSched lib folder than
    its own (``ignored_folders``: the platform's and the system's folders, which any build may name)."""
    names = list(library_names)
    ignored = {posixpath.normpath(folder) for folder in ignored_folders}
    files: list[XSchedFile] = []
    for obj in report.objects:
        library = next((name for name in names if posixpath.basename(obj.path) == name or obj.soname == name), None)
        if library is None or obj.kind in ("executable", "interpreter"):
            continue
        folder = posixpath.dirname(obj.real_path or obj.path)
        entries = tuple(_expand_origin(entry, posixpath.dirname(obj.path)) for entry in (obj.runpath or obj.rpath or ()))
        foreign = tuple(entry for entry in entries if entry.startswith("/") and entry not in ignored
                        and _real(fs, entry) != folder and entry != posixpath.dirname(obj.path)
                        and _holds_xsched(fs, entry, names))
        files.append(XSchedFile(library, obj.path, folder, obj.reason, entries, foreign))
    return files


def _holds_xsched(fs: TargetFS, folder: str, names: list[str]) -> bool:
    """Whether ``folder`` is an XSched lib folder (holds one of its libraries): a RUNPATH naming one is
    the prefix the copy was built for (a folder of another kind, such as a toolkit's, is not)."""
    return any(fs.isfile(posixpath.join(folder, name)) for name in names)


def _real(fs: TargetFS, path: str) -> str:
    try:
        return fs.realpath(path)
    except OSError:
        return path


def mixed_builds(files: list[XSchedFile]) -> bool:
    """True when the XSched libraries come from more than one folder, or one was built for another prefix."""
    return len({file.folder for file in files}) > 1 or any(file.foreign_entries for file in files)
