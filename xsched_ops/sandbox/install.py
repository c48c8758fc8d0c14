"""The XSched-like install: the project's C++ sources under ``docker/xsched-like`` built with g++.

Builds are cached on the host by a hash of the sources, the compiler and the prefix, in
``$XDG_CACHE_HOME/xsched-ops/build/<hash>`` (``~/.cache`` by default): a second call returns at
once. A build goes to a temporary folder beside the cache entry and is renamed into place, so a
half-finished build is never taken for a finished one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xsched_ops.errors import SandboxError
from xsched_ops.sandbox.scenarios import INSTALL_TREES, PREFIX
from xsched_ops.xsched import platforms

ProgressCallback = Callable[[str], None]

BUILD_SCRIPT = "build.sh"


def sources_dir() -> Path:
    """``docker/xsched-like`` of the checkout this package runs from."""
    folder = Path(__file__).resolve().parents[2] / "docker" / "xsched-like"
    if not (folder / BUILD_SCRIPT).is_file():
        raise SandboxError(
            f"the sandbox's C++ sources are not at {folder}",
            "run xsched-ops from a checkout of the project (`make install` there)",
        )
    return folder


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xsched-ops"


@dataclass(frozen=True)
class InstallBuild:
    """A finished build: ``root/install`` is the install tree, ``root/variants`` the broken pieces."""

    root: Path
    key: str
    built_now: bool

    @property
    def install(self) -> Path:
        return self.root / "install"

    def path(self, relative: str) -> Path:
        return self.root / relative


def _compiler() -> tuple[str, str]:
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise SandboxError(f"the C++ compiler {compiler!r} is not installed",
                           "install it with `apt-get install g++` (or set CXX)")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False)
    return compiler, version.stdout.splitlines()[0] if version.stdout else compiler


def build_key(sources: Path, compiler_version: str, prefix: str = PREFIX) -> str:
    digest = hashlib.sha256()
    digest.update(f"prefix={prefix}\ncompiler={compiler_version}\n".encode())
    for path in sorted(p for p in sources.rglob("*") if p.is_file()):
        digest.update(path.relative_to(sources).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _is_complete(root: Path) -> bool:
    """Every platform's install tree of the build holds its shim."""
    return all((root / tree / "lib" / platforms.get(name).shim).is_file() for name, tree in INSTALL_TREES.items())


def ensure_install(progress: ProgressCallback | None = None, prefix: str = PREFIX) -> InstallBuild:
    """Build the install (or reuse the cached build) and return where it is."""
    report = progress or (lambda _message: None)
    sources = sources_dir()
    compiler, compiler_version = _compiler()
    key = build_key(sources, compiler_version, prefix)
    builds = cache_root() / "build"
    final = builds / key
    if _is_complete(final):
        report(f"XSched-like install: cached build {final}")
        return InstallBuild(root=final, key=key, built_now=False)

    builds.mkdir(parents=True, exist_ok=True)
    report(f"XSched-like install: compiling {sources} with {compiler_version}")
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=builds))
    try:
        completed = subprocess.run(
            ["sh", str(sources / BUILD_SCRIPT), str(scratch), prefix],
            capture_output=True, text=True, check=False, env={**os.environ, "CXX": compiler},
        )
        if completed.returncode != 0:
            tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
            raise SandboxError(
                f"building the XSched-like install from {sources} failed (exit {completed.returncode}): {tail}",
                "fix the sources or the compiler; the build script is docker/xsched-like/build.sh",
            )
        try:
            scratch.rename(final)
        except OSError:
            # Another process finished the same build first: use theirs.
            if not _is_complete(final):
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    report(f"XSched-like install: built {final}")
    return InstallBuild(root=final, key=key, built_now=True)
