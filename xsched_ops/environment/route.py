"""How a process reaches XSched, by route: the additions to an environment *as the user has it*.

One rule, used wherever an XSched process is started or judged without repairing the user's
setup: the doctor's model and ground-truth load, a run's roles when nothing is stored
(``as_configured_environment``), and the sandbox's loader probe. The environment builder
(``builder.build_environment``) is the other, repairing, path.

* ``preload``: an ``LD_PRELOAD`` entry that is the install's shim is kept where it is; otherwise
  the shim goes in front (a misspelled entry stays: the loader would only warn about it);
* ``libpath``: the lib folder goes first on ``LD_LIBRARY_PATH`` (unless it is first already), so the
  runtime's soname resolves to the shim's softlink; the rest of the list stays as the user wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from xsched_ops.environment.loader_vars import split_path_list, split_preload

Route = Literal["preload", "libpath"]
ROUTES: tuple[Route, ...] = ("preload", "libpath")


def with_xsched_reachable(env: Mapping[str, str], route: str, *, shim_path: str, lib_dir: str) -> dict[str, str]:
    """A copy of ``env`` with XSched reachable by ``route`` (see the module's docstring); nothing else changes."""
    reachable = dict(env)
    if route == "preload":
        preloads = split_preload(reachable.get("LD_PRELOAD", ""))
        if shim_path not in preloads:
            reachable["LD_PRELOAD"] = " ".join([shim_path, *preloads])
    else:  # libpath (as in the builder, any route but preload; the command line checks the name)
        entries = split_path_list(reachable.get("LD_LIBRARY_PATH", ""))
        if not entries or entries[0] != lib_dir:
            reachable["LD_LIBRARY_PATH"] = ":".join([lib_dir, *entries])
    return reachable
