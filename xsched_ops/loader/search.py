"""Where the loader looks for a library name, in its order: written once, walked by both the
resolution (``LoaderModel._search``) and the listing of every candidate file
(``LoaderModel.candidates``, which names the file that would have defined a missing symbol).

glibc 2.36, ``elf/dl-load.c`` (``_dl_map_object``, ``open_path``, ``fillin_rpath``):

1. DT_RPATH of the requesting object, then of the object that loaded it, and on up to the
   program, only when the requester has no DT_RUNPATH. An object that has both ignores its own
   DT_RPATH (``elf_get_dynamic_info``). Then the program's DT_RPATH if the chain did not search it.
2. LD_LIBRARY_PATH, split on ``:`` and ``;``; an empty entry is the current directory;
   ``$ORIGIN`` there is the program's folder.
3. DT_RUNPATH of the requester (never inherited).
4. ld.so.cache, unless the requester has DF_1_NODEFLIB and the cached file lies in a default folder.
5. The default folders, unless the requester has DF_1_NODEFLIB.

A name with a ``/`` is not searched: it is opened as given (``$ORIGIN`` expanded). Each folder
is tried with its glibc-hwcaps and legacy hwcaps subfolders first (``LoaderModel._try_folder``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from xsched_ops.elf import ElfObject
from xsched_ops.environment.loader_vars import split_path_list
from xsched_ops.loader.platform import LoaderPlatform
from xsched_ops.loader.types import SearchStep


@dataclass(eq=False)
class LinkMap:
    """A loaded object while the model runs (glibc's ``struct link_map``)."""

    elf: ElfObject
    path: str
    real_path: str
    identity: tuple[int, int] | None
    requested_name: str
    loader: LinkMap | None
    kind: str
    reason: str
    search: tuple[SearchStep, ...]
    names: set[str] = field(default_factory=set)
    in_scope: bool = True
    deps: list[LinkMap] = field(default_factory=list)  # the objects its DT_NEEDED entries resolved to

    @property
    def origin(self) -> str:
        return posixpath.dirname(self.path) or "/"


class SearchPlace(NamedTuple):  # a tuple: one is made for every folder of every search
    """One place the loader tries for a name: a folder, the ld.so.cache's file, or a step it leaves out."""

    source: str  # "RPATH of libshimhip.so", "LD_LIBRARY_PATH entry 1", "ld.so.cache", "default directory"...
    step: str  # the path list the place belongs to (glibc's ``open_path`` gives up on a list as a whole)
    folder: str | None = None  # absolute folder (its hwcaps subfolders come first)
    path: str | None = None  # the ld.so.cache's file for the name
    skipped: str | None = None  # why the loader leaves this step out


def expand_dst(text: str, origin: str, platform: LoaderPlatform) -> str:
    """``$ORIGIN``, ``$LIB`` and ``$PLATFORM`` (and their ``${...}`` forms) expanded as glibc's
    ``_dl_dst_substitute`` does: ``$ORIGIN`` only when the token ends there (``is_dst``)."""
    for token, value in (("ORIGIN", origin), ("LIB", platform.lib), ("PLATFORM", platform.platform)):
        text = text.replace("${" + token + "}", value)
        result = []
        rest = text
        marker = "$" + token
        while marker in rest:
            before, _, after = rest.partition(marker)
            if after[:1].isalnum() or after[:1] == "_":
                result.append(before + marker)
            else:
                result.append(before + value)
            rest = after
        text = "".join(result) + rest
    return text


def absolute(path: str, cwd: str) -> str:
    """A target path made absolute against ``cwd`` (relative entries are relative to the process's cwd)."""
    return path if path.startswith("/") else posixpath.normpath(posixpath.join(cwd, path))


def _folder(entry: str, origin: str, platform: LoaderPlatform, cwd: str) -> str:
    expanded = expand_dst(entry, origin, platform)
    if not expanded:  # an empty entry: the file name alone, opened relative to the cwd
        return cwd
    return absolute(expanded.rstrip("/") or "/", cwd)


def search_places(name: str, requester: LinkMap, main: LinkMap | None, library_path: str | None, cwd: str,
                  platform: LoaderPlatform, cache_lookup: Callable[[str], str | None]) -> Iterator[SearchPlace]:
    """Every place the loader tries for ``name`` (without a ``/``) asked for by ``requester``, in
    glibc's order. Lazy: the ld.so.cache is consulted only when the walk reaches it."""
    if requester.elf.runpath is None:
        chain: LinkMap | None = requester
        searched_main = False
        while chain is not None:
            if chain.elf.rpath is not None and chain.elf.runpath is None:
                searched_main |= chain is main
                source = f"RPATH of {posixpath.basename(chain.path)}"
                for entry in chain.elf.rpath:
                    yield SearchPlace(source, source, folder=_folder(entry, chain.origin, platform, cwd))
            chain = chain.loader
        if main is not None and not searched_main and main.elf.rpath is not None and main.elf.runpath is None:
            source = f"RPATH of {posixpath.basename(main.path)} (the executable)"
            for entry in main.elf.rpath:
                yield SearchPlace(source, source, folder=_folder(entry, main.origin, platform, cwd))
    if library_path is not None:
        main_origin = main.origin if main is not None else cwd
        entries = split_path_list(library_path)  # glibc ignores an empty LD_LIBRARY_PATH
        for number, entry in enumerate(entries, start=1):
            source = f"LD_LIBRARY_PATH entry {number}" + (" (empty: current directory)" if not entry else "")
            yield SearchPlace(source, "LD_LIBRARY_PATH", folder=_folder(entry, main_origin, platform, cwd))
    if requester.elf.runpath is not None:
        source = f"RUNPATH of {posixpath.basename(requester.path)}"
        for entry in requester.elf.runpath:
            yield SearchPlace(source, source, folder=_folder(entry, requester.origin, platform, cwd))
    nodeflib = requester.elf.nodeflib
    cached = cache_lookup(name)
    if cached is not None:
        if nodeflib and any(cached.startswith(folder + "/") for folder in platform.system_dirs):
            yield SearchPlace("ld.so.cache", "ld.so.cache", path=cached,
                              skipped="skipped: DF_1_NODEFLIB of the requester")
        else:
            yield SearchPlace("ld.so.cache", "ld.so.cache", path=cached)
    if nodeflib:
        yield SearchPlace("default directories", "default directories",
                          skipped="skipped: DF_1_NODEFLIB of the requester")
    else:
        for folder in platform.system_dirs:
            yield SearchPlace("default directory", "default directories", folder=folder)


def describe(source: str) -> str:
    """The reason shown for a file found at ``source`` ("found via LD_LIBRARY_PATH entry 1", "RUNPATH of ...")."""
    if source.startswith("LD_LIBRARY_PATH") or source == "default directory":
        return f"found via {source}"
    return source
