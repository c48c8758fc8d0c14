"""A model of glibc 2.36's dynamic loader (``elf/rtld.c``, ``elf/dl-load.c``, ``elf/dl-deps.c``,
``elf/dl-lookup.c``, ``elf/dl-version.c``), run over a target's files without executing anything.

Version notes (where other glibc versions behave differently):

* glibc-hwcaps subfolders exist since 2.33; legacy hwcaps subfolders (``tls``, ``haswell``,
  ``x86_64``...) are searched up to 2.36 and were removed in 2.37.
* ``LD_LIBRARY_PATH`` accepts ``;`` as a separator as well as ``:`` (all versions in use).
* The ``$ORIGIN`` of the main program comes from ``/proc/self/exe`` (symbolic links resolved);
  under ``ld.so --list PROG`` it is the folder of the path given instead. The model uses the
  former (a program that is executed).
* ``LD_PRELOAD`` is split by ``environment.loader_vars.split_preload``; ``--preload`` (2.30+) and
  DT_FILTER/DT_AUXILIARY filtees are not modelled (the latter noted as a warning).
* Symbol lookups: the model applies glibc's ``check_match`` rules; copy relocations, protected
  data and ``STB_GNU_UNIQUE`` tables are not modelled beyond "a definition is found".

Parts: ``types`` (results), ``session`` (what a batch shares), ``search`` (the search order, once),
``verify`` (the verdict on each file tried), ``symbols`` (binding, versions); here: a whole start-up.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping

from xsched_ops.elf import (
    ElfObject,
    LdCache,
    SymbolReference,
    clear_cache,
    demangle_many,
    required_cache_flags,
)
from xsched_ops.environment.loader_vars import split_preload
from xsched_ops.errors import ElfError, TargetPathError
from xsched_ops.loader.platform import LoaderPlatform
from xsched_ops.loader.search import LinkMap, SearchPlace, absolute, describe, expand_dst, search_places
from xsched_ops.loader.session import LoaderSession
from xsched_ops.loader.symbols import (
    Key,
    check_versions,
    clear_lookups,
    closure,
    find_definers,
    object_defines,
    reference_key,
    scope_index,
    table_defines,
)
from xsched_ops.loader.types import (
    GLIBC_MODEL_VERSION,
    Edge,
    FailedPreload,
    LoadedObject,
    LoadReport,
    NotFound,
    ProviderCandidate,
    SearchStep,
    UnresolvedSymbol,
    VersionProblem,
)
from xsched_ops.loader.verify import Verdict, fatal_line, loader_errno_text, verify
from xsched_ops.target.fs import TargetFS

__all__ = [
    "GLIBC_MODEL_VERSION", "Edge", "FailedPreload", "LoadReport", "LoadedObject", "LoaderModel",
    "LoaderSession", "NotFound", "ProviderCandidate", "SearchStep", "UnresolvedSymbol", "VersionProblem", "analyze",
    "analyze_many", "clear_caches", "find_definers",
]

_NO_SUCH_FILE = loader_errno_text(2)


def clear_caches() -> None:
    """Forget every file read (ELF files, symbol tables, ld.so.cache) and every look-up kept."""
    clear_cache()
    clear_lookups()


class _Failure(Exception):
    """A load that failed: ``text`` is the loader's message, ``errno_text`` what it appends to it
    (never in the preload warning), ``tried`` every place tried; the last is the file it stopped
    on when the loader names the file."""

    def __init__(self, text: str, errno_text: str | None, tried: tuple[SearchStep, ...]) -> None:
        super().__init__(text)
        self.text = text
        self.message = f"{text}: {errno_text}" if errno_text else text
        self.tried = tried


class LoaderModel:
    def __init__(self, fs: TargetFS, env: Mapping[str, str], cwd: str, platform: LoaderPlatform | None = None,
                 cache: LdCache | None = None, session: LoaderSession | None = None) -> None:
        if session is None:
            session = LoaderSession(fs, platform, cache)
        elif session.fs is not fs:
            raise ValueError("the session belongs to another file system")
        self.session = session
        self.fs = fs
        self.env = dict(env)
        self.cwd = cwd if cwd.startswith("/") else "/" + cwd
        self.platform = platform or session.platform
        self.cache = cache if cache is not None else session.cache
        self.maps: list[LinkMap] = []
        self.main: LinkMap | None = None
        self.interpreter: LinkMap | None = None  # the dynamic linker: in the namespace from the start
        same_platform = self.platform is session.platform
        self._subdir_cache: dict[str, tuple[str, ...]] = session.subdirs if same_platform else {}
        self._verified: dict[str, Verdict] = session.verified if same_platform else {}
        self._cache_flags = (session.cache_flags if same_platform
                             else required_cache_flags(self.platform.machine, self.platform.elf_class))
        self.warnings: list[str] = []
        self._library_path = self.env.get("LD_LIBRARY_PATH")

    # -- files and folders -----------------------------------------------------------------------
    def _verify(self, path: str) -> Verdict:
        """The loader's verdict on ``path`` (``verify``), kept for the session."""
        verdict = self._verified.get(path)
        if verdict is None:
            verdict = self._verified[path] = verify(self.session, path, self.platform)
        return verdict

    def _cache_lookup(self, name: str) -> str | None:
        entry = self.cache.lookup(name, self._cache_flags, self.platform.glibc_hwcaps)
        return entry.path if entry is not None else None

    def _files(self, place: SearchPlace, name: str) -> list[tuple[str, str]]:
        """(path, label) of the files the loader tries at ``place``: a folder's existing hwcaps subfolders first."""
        files = [(posixpath.join(place.folder, sub, name), f"{place.source} (glibc-hwcaps or legacy subfolder {sub})")
                 for sub in self.session.existing_subdirs(place.folder, self.platform, self._subdir_cache)]
        files.append((posixpath.join(place.folder, name), place.source))
        return files

    # -- name lookup among loaded objects --------------------------------------------------------
    def _find_loaded(self, name: str) -> LinkMap | None:
        candidates = list(self.maps)
        if self.interpreter is not None and self.interpreter not in candidates:
            candidates.append(self.interpreter)
        for m in candidates:
            if name in m.names:
                return m
            if m.elf.soname == name:
                m.names.add(name)
                return m
        return None

    def _search(self, name: str, requester: LinkMap) -> tuple[str, ElfObject, str, tuple[SearchStep, ...]]:
        """glibc's ``_dl_map_object`` search for a name (no reuse): (path, elf, reason, steps)."""
        steps: list[SearchStep] = []
        if "/" in name:
            path = absolute(expand_dst(name, requester.origin, self.platform), self.cwd)
            verdict = self._verify(path)
            steps.append(SearchStep(path, "path given", verdict.outcome))
            if verdict.elf is not None:
                return path, verdict.elf, "path given", tuple(steps)
            raise self._failure(verdict, verdict.other_class, verdict.errno_text or _NO_SUCH_FILE, steps)
        other_class = False
        last_errno = _NO_SUCH_FILE
        abandoned_step: str | None = None
        for place in search_places(name, requester, self.main, self._library_path, self.cwd, self.platform,
                                   self._cache_lookup):
            if place.step == abandoned_step:
                continue
            if place.skipped is not None:
                steps.append(SearchStep(place.path or "", place.source, place.skipped))
                continue
            for path, label in self._files(place, name) if place.folder is not None else ((place.path, place.source),):
                verdict = self._verify(path)
                steps.append(SearchStep(path, label, verdict.outcome))
                if verdict.elf is not None:
                    return path, verdict.elf, place.source, tuple(steps)
                if verdict.stops:
                    raise self._failure(verdict, False, None, steps)
                other_class |= verdict.other_class
                last_errno = verdict.errno_text or _NO_SUCH_FILE  # glibc sets ENOENT after a skipped file
                if verdict.ends_step:
                    abandoned_step = place.step
                    break
        raise self._failure(None, other_class, last_errno, steps)

    def _failure(self, verdict: Verdict | None, other_class: bool, errno_text: str | None,
                 steps: list[SearchStep]) -> _Failure:
        """The file's own error, else "wrong ELF class" (only the other class found), else "cannot open"."""
        if verdict is not None and verdict.error is not None:
            return _Failure(verdict.error, verdict.errno_text, tuple(steps))
        if other_class:
            return _Failure("wrong ELF class: " + ("ELFCLASS32" if self.platform.elf_class == 2 else "ELFCLASS64"),
                            None, tuple(steps))
        return _Failure("cannot open shared object file", errno_text, tuple(steps))

    def candidates(self, name: str, requester: LinkMap) -> list[tuple[str, str, ElfObject]]:
        """(path, reason, elf) of every file ``_search`` could take for ``name``, in its order (the same walk)."""
        if "/" in name:
            return []
        found: list[tuple[str, str, ElfObject]] = []
        for place in search_places(name, requester, self.main, self._library_path, self.cwd, self.platform,
                                   self._cache_lookup):
            if place.skipped is not None:
                continue
            for path, _ in self._files(place, name) if place.folder is not None else ((place.path, place.source),):
                elf = self._verify(path).elf
                if elf is not None and all(path != seen for seen, _, _ in found):
                    found.append((path, describe(place.source), elf))
        return found

    def _map_object(self, name: str, requester: LinkMap, kind: str) -> tuple[LinkMap, bool]:
        """Load ``name`` for ``requester``: (map, reused). Raises ``_Failure``."""
        existing = self._find_loaded(name)
        if existing is not None:
            return existing, True
        path, elf, reason, steps = self._search(name, requester)
        real_path = self.session.realpath(path)
        identity = self.session.identity(path)
        for m in [*self.maps, *([self.interpreter] if self.interpreter else [])]:
            if identity is not None and m.identity == identity:
                m.names.add(name)
                return m, True
        new = LinkMap(elf=elf, path=path, real_path=real_path, identity=identity, requested_name=name,
                      loader=requester, kind=kind, reason=describe(reason), search=steps, names={name, path})
        return new, False

    # -- the whole start-up ----------------------------------------------------------------------
    def run(self, executable: str, check_symbols: bool = True) -> LoadReport:
        exe_path = absolute(executable, self.cwd)
        try:
            exe_elf = self.session.read_elf(exe_path)
        except TargetPathError as err:
            raise TargetPathError(f"{executable}: no such file in the target", "give a path to an ELF file") from err
        except ElfError as err:  # unreadable for the model too: refused, in the loader's words where it has some
            verdict = verify(self.session, exe_path, self.platform)
            if verdict.error is None or verdict.error.startswith("malformed"):
                raise
            raise ElfError(f"{executable}: {verdict.error}", "give an intact ELF object: the dynamic loader refuses this one") from err
        verdict = verify(self.session, exe_path, self.platform, exe_elf)
        if verdict.stops:  # the loader refuses the program itself (as ``ld.so PROGRAM`` does)
            message = f"{verdict.error}: {verdict.errno_text}" if verdict.errno_text else str(verdict.error)
            self.warnings.append(f"{exe_path}: {message}")
            return LoadReport(GLIBC_MODEL_VERSION, exe_path, self.cwd, self.env.get("LD_LIBRARY_PATH"),
                              self.env.get("LD_PRELOAD"), (), self.cache.format, (), (), (), (), (), (),
                              tuple(self.warnings), False, fatal_line(exe_path, message), False)
        if exe_elf.machine != self.platform.machine or exe_elf.elf_class != self.platform.elf_class:
            raise ElfError(f"{executable}: {exe_elf.class_name} {exe_elf.machine_name} cannot run under "
                           f"{self.platform.interpreter}", "the model covers x86-64 programs")
        main = LinkMap(elf=exe_elf, path=exe_path, real_path=self.session.realpath(exe_path),
                       identity=self.session.identity(exe_path), requested_name=executable, loader=None,
                       kind="executable", reason="the program", search=(), names={exe_path})
        self.main = main
        self.maps.append(main)
        interpreter_path = exe_elf.interpreter or self.platform.interpreter
        try:
            interpreter_elf = self.session.read_elf(interpreter_path)
            self.interpreter = LinkMap(
                elf=interpreter_elf, path=interpreter_path, real_path=self.session.realpath(interpreter_path),
                identity=self.session.identity(interpreter_path), requested_name=interpreter_path, loader=None,
                kind="interpreter", reason="the dynamic linker itself (PT_INTERP), loaded before everything",
                search=(), names={interpreter_path, posixpath.basename(interpreter_path)})
        except (ElfError, TargetPathError):
            self.warnings.append(f"dynamic linker {interpreter_path} not readable in the target")

        edges: list[Edge] = []
        not_found: list[NotFound] = []
        failed_preloads: list[FailedPreload] = []

        preload_env = self.env.get("LD_PRELOAD")
        preload_names = split_preload(preload_env) if preload_env else []
        ld_so_preload = self.session.ld_so_preload()
        for source, names in (("LD_PRELOAD", preload_names), ("/etc/ld.so.preload", ld_so_preload)):
            for name in names:
                try:
                    loaded, reused = self._map_object(name, main, "preload")
                except _Failure as failure:
                    if failure.tried and failure.tried[-1].outcome.startswith("killed: "):  # the process dies
                        not_found.append(NotFound(name, main.path, failure.message, failure.tried))
                        edges.append(Edge(main.path, name, None, f"{source}: {failure.message}", False))
                        continue
                    warning = f"ERROR: ld.so: object '{name}' from {source} cannot be preloaded ({failure.text}): ignored."
                    failed_preloads.append(FailedPreload(name, source, warning, failure.tried))
                    edges.append(Edge(main.path, name, None, f"{source}: cannot be preloaded, ignored", False))
                    continue
                if not reused:
                    loaded.reason = f"{source} ({loaded.reason})"
                    self.maps.append(loaded)
                edges.append(Edge(main.path, name, loaded.path, f"{source}: {loaded.reason}", reused))

        # Breadth-first over DT_NEEDED (glibc's _dl_map_object_deps), starting with the program
        # and the preloads in order.
        index = 0
        while index < len(self.maps):
            current = self.maps[index]
            index += 1
            if current.elf.has_filters:
                self.warnings.append(f"{current.path}: DT_FILTER/DT_AUXILIARY filtees are not modelled")
            for name in current.elf.needed:
                try:
                    loaded, reused = self._map_object(name, current, "needed")
                except _Failure as failure:
                    not_found.append(NotFound(name, current.path, failure.message, failure.tried))
                    refused = failure.tried and failure.tried[-1].outcome.startswith(("error: ", "killed: "))
                    edges.append(Edge(current.path, name, None,
                                      f"{'not loaded' if refused else 'not found'}: {failure.message}", False))
                    continue
                current.deps.append(loaded)
                if loaded not in self.maps:
                    self.maps.append(loaded)
                    reused_reason = loaded.reason
                    edges.append(Edge(current.path, name, loaded.path, reused_reason, reused and loaded.kind != "interpreter"))
                else:
                    edges.append(Edge(current.path, name, loaded.path, f"already loaded ({loaded.reason})", True))

        version_problems = check_versions(self.maps)
        unresolved: list[UnresolvedSymbol] = []
        if check_symbols:
            unresolved = self._resolve_symbols()

        objects = tuple(
            LoadedObject(position=i, path=m.path, real_path=m.real_path, requested_name=m.requested_name,
                         needed_by=m.loader.path if m.loader else None, kind=m.kind, reason=m.reason,
                         soname=m.elf.soname, needed=m.elf.needed, rpath=m.elf.rpath, runpath=m.elf.runpath,
                         search=m.search)
            for i, m in enumerate(self.maps))
        fatal = self._fatal_error(not_found, version_problems, unresolved)
        return LoadReport(
            glibc_model=GLIBC_MODEL_VERSION, executable=exe_path, cwd=self.cwd,
            ld_library_path=self.env.get("LD_LIBRARY_PATH"), ld_preload=preload_env,
            ld_so_preload=tuple(ld_so_preload), ld_so_cache=self.cache.format, objects=objects, edges=tuple(edges),
            not_found=tuple(not_found), failed_preloads=tuple(failed_preloads),
            unresolved_symbols=tuple(unresolved), version_problems=tuple(version_problems),
            warnings=tuple(self.warnings), symbols_checked=check_symbols, fatal_error=fatal,
            would_start=fatal is None)

    # -- symbols (dl-lookup.c) -------------------------------------------------------------------
    def _resolve_symbols(self) -> list[UnresolvedSymbol]:
        """Every looked-up reference (not weak, used by a relocation) no object of the global scope defines.

        The scope is the program followed by the others; the others' look-ups are shared with
        every program that has the same libraries (``ScopeIndex``), and what they leave open is
        then looked up in the program itself.
        """
        missing: list[tuple[LinkMap, SymbolReference]] = []
        bind_now_env = self.env.get("LD_BIND_NOW", "") != ""
        main = self.maps[0]
        scope = scope_index(tuple(m.elf for m in self.maps[1:]))
        main_table = main.elf.symbols()
        for m in self.maps:
            if m is main:
                open_lookups: Iterable[tuple[Key, int]] = [
                    lookup for lookup in main_table.lookups if not scope.defines(lookup[0])]
            else:
                # A library's references are first looked up among its own dependencies (the
                # same files for every program that loads it), then what is left in the scope.
                dependencies = scope_index(closure(m))
                open_lookups = dependencies.unresolved_references(m.elf)
                if dependencies is not scope:
                    open_lookups = [lookup for lookup in open_lookups if not scope.defines(lookup[0])]
            for key, number in open_lookups:  # the program's own names are indexed only when needed here
                if key[0] not in main_table.name_index() or not table_defines(main_table, key):
                    missing.append((m, m.elf.symbols().references[number]))
        names = demangle_many(ref.symbol.name for _, ref in missing)
        unresolved = []
        for m, reference in missing:
            symbol = reference.symbol
            when = "startup" if reference.at_startup or bind_now_env else "lazy"
            loaded_provider, expected_provider = self._providers(m, reference)
            version_text = f", version {symbol.version}" if symbol.version else ""
            unresolved.append(UnresolvedSymbol(
                symbol=symbol.name, demangled=names[symbol.name], needed_by=m.path, version=symbol.version,
                version_file=reference.version_file, when=when, loaded_provider=loaded_provider,
                expected_provider=expected_provider,
                message=f"symbol lookup error: {m.path}: undefined symbol: {symbol.name}{version_text}"))
        return unresolved

    def _providers(self, m: LinkMap, reference: SymbolReference) -> tuple[ProviderCandidate | None, ProviderCandidate | None]:
        """Which loaded dependency of ``m`` should have defined the symbol, and which file would.

        For each direct dependency name of ``m`` (the version's file first), every file the search
        path offers under that name is checked, in search order: the first that defines the
        symbol is the expected provider, and the loaded file for that name the loaded provider.
        """
        names = list(m.elf.needed)
        if reference.version_file in names:
            names.remove(reference.version_file)
            names.insert(0, reference.version_file)
        fallback: tuple[ProviderCandidate | None, ProviderCandidate | None] = (None, None)
        for name in names:
            loaded = next((p for p in self.maps if name in p.names), None)
            if loaded is None:
                continue
            loaded_candidate = ProviderCandidate(loaded.path, loaded.reason)
            if reference.version_file == name and fallback == (None, None):
                fallback = (loaded_candidate, None)
            for path, reason, elf in self.candidates(name, m):
                if self.session.identity(path) != loaded.identity and object_defines(elf, reference_key(reference)):
                    return loaded_candidate, ProviderCandidate(path, reason)
        return fallback

    def _fatal_error(self, not_found: list[NotFound], versions: list[VersionProblem],
                     unresolved: list[UnresolvedSymbol]) -> str | None:
        if not_found:
            first = not_found[0]
            last = first.tried[-1] if first.tried else None
            # The loader names the file when the file itself is at fault, else the name asked for.
            at_fault = last is not None and last.outcome.startswith(("error: ", "killed: "))
            return fatal_line(last.path if at_fault and last is not None else first.name, first.message)
        errors = [v for v in versions if v.severity == "error"]
        if errors:
            return errors[0].message
        # Relocation runs from the last loaded object to the first; within one object in
        # relocation order.
        order = {m.path: i for i, m in enumerate(self.maps)}
        startup = [u for u in unresolved if u.when == "startup"]
        if startup:
            positions = {}
            for m in self.maps:
                if m.path in {u.needed_by for u in startup}:
                    for ref in m.elf.symbols().references:
                        positions[(m.path, ref.symbol.name)] = ref.first_relocation
            startup.sort(key=lambda u: (-order[u.needed_by], positions.get((u.needed_by, u.symbol), 0)))
            return startup[0].message
        return None




def analyze(fs: TargetFS, executable: str, env: Mapping[str, str], cwd: str = "/",
            check_symbols: bool = True, platform: LoaderPlatform | None = None,
            cache: LdCache | None = None) -> LoadReport:
    """Model the start of ``executable`` (a path in the target) under ``env`` and ``cwd``."""
    return LoaderModel(fs, env, cwd, platform=platform, cache=cache).run(executable, check_symbols=check_symbols)


def analyze_many(fs: TargetFS, executables: Iterable[str], env: Mapping[str, str], cwd: str = "/",
                 check_symbols: bool = True, platform: LoaderPlatform | None = None,
                 cache: LdCache | None = None) -> Iterator[LoadReport]:
    """``analyze`` for each executable in turn, with one ``LoaderSession``: the file system's
    answers are shared, so a library found for one program is not searched for again."""
    session = LoaderSession(fs, platform, cache)
    for executable in executables:
        yield LoaderModel(fs, env, cwd, session=session).run(executable, check_symbols=check_symbols)
