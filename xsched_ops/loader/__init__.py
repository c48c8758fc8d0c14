"""A model of glibc 2.36's dynamic loader over a target's files (no process is started).

Public API::

    analyze(fs: TargetFS, executable: str, env: Mapping[str, str], cwd: str = "/",
            check_symbols: bool = True, platform: LoaderPlatform | None = None,
            cache: LdCache | None = None) -> LoadReport
        What the loader would do when ``executable`` (a path in the target) starts with ``env``
        in ``cwd``: LD_PRELOAD (spaces and colons) and /etc/ld.so.preload, DT_NEEDED
        breadth-first with reuse by name/SONAME/file, the RPATH -> LD_LIBRARY_PATH -> RUNPATH ->
        ld.so.cache -> default dirs search (hwcaps subfolders, $ORIGIN/$LIB/$PLATFORM,
        DF_1_NODEFLIB, wrong class/machine skipped), version needs, and symbol resolution in
        the global scope (only when ``check_symbols``). Damaged files get glibc's verdict in its
        words (``verify``): too short, cut, another byte order, a loop, a directory; a file cut
        after its program headers kills the process with SIGBUS, which the report says.

    The search order is written once (``search.search_places``); ``LoaderModel.candidates`` lists
    every usable file along the same walk. Modules: ``types`` (results), ``session``, ``search``,
    ``verify``, ``symbols``, ``model``.

    analyze_many(fs, executables: Iterable[str], env, cwd="/", check_symbols=True, ...) -> Iterator[LoadReport]
        ``analyze`` for each file with one ``LoaderSession`` (the file system's answers shared).

    clear_caches() -> None        # forget every file read and every look-up kept

    Costs: the ld.so.cache is parsed once per version of the file per process; each ELF file
    (and its symbol table) is read once per process while it is unchanged; the symbol look-ups
    of a global scope's libraries are made once per scope (every program with the same
    libraries shares them) and only the program's own references are looked up per program.

    find_definers(fs: TargetFS, symbol: str, folders: Iterable[str], version: str | None = None) -> list[str]
        The files in ``folders`` whose dynamic symbol table defines ``symbol``.

    detect_platform() -> LoaderPlatform     # hwcaps levels, $PLATFORM, $LIB of this CPU / Debian

``LoadReport`` (frozen dataclass; ``to_dict()``, ``to_json()``, ``object_for(name_or_path)``):
    objects: tuple[LoadedObject]        # global scope order: path, real_path, requested_name,
                                        # needed_by, kind, reason, soname, needed, search steps
    edges: tuple[Edge]                  # every request (needed_by, name, path, reason, reused)
    not_found: tuple[NotFound]          # name, needed_by, message, every SearchStep tried
    failed_preloads: tuple[FailedPreload]   # the loader's "cannot be preloaded ... ignored." line
    unresolved_symbols: tuple[UnresolvedSymbol]  # symbol, demangled, needed_by, version, when
                                        # ("startup"/"lazy"), loaded_provider, expected_provider
    version_problems: tuple[VersionProblem]
    fatal_error: str | None             # the first error line the real loader prints
    would_start: bool

Every decision carries a reason string: "found via LD_LIBRARY_PATH entry 1", "RPATH of
libshimhip.so", "RUNPATH of libshimhip.so", "ld.so.cache", "found via default directory",
"skipped: wrong machine (...)". Files are touched only through ``TargetFS``.
"""

from xsched_ops.loader.model import (
    GLIBC_MODEL_VERSION,
    Edge,
    FailedPreload,
    LoadedObject,
    LoaderModel,
    LoaderSession,
    LoadReport,
    NotFound,
    ProviderCandidate,
    SearchStep,
    UnresolvedSymbol,
    VersionProblem,
    analyze,
    analyze_many,
    clear_caches,
    find_definers,
)
from xsched_ops.loader.platform import LoaderPlatform, detect_platform

__all__ = [
    "GLIBC_MODEL_VERSION", "Edge", "FailedPreload", "LoadReport", "LoadedObject", "LoaderModel", "LoaderSession",
    "LoaderPlatform", "NotFound", "ProviderCandidate", "SearchStep", "UnresolvedSymbol", "VersionProblem",
    "analyze", "analyze_many", "clear_caches", "detect_platform", "find_definers",
]
