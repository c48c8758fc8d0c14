"""The sandbox image: a Debian bookworm root file system made by debootstrap, then imported.

No registry is needed: debootstrap fetches Debian's packages (python3, Debian's real HIP runtime
``libamdhip64-5``, rocminfo, rocm-smi, binutils, ...) from the Debian archive into a folder
under /var/tmp, which is archived to a tar on disk and streamed to the engine's import endpoint.
The image is tagged ``xsched-ops-sandbox:<hash>``, the hash covering every input (suite,
mirror, package list, image settings and ``RECIPE_VERSION``), and is built once and reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors

from xsched_ops.errors import SandboxError
from xsched_ops.sandbox.install import cache_root
from xsched_ops.target import engine

ProgressCallback = Callable[[str], None]

# Bump when the way the image is built changes, so that old images are not reused.
RECIPE_VERSION = 1

REPOSITORY = "xsched-ops-sandbox"
SANDBOX_LABEL = "org.xsched-ops.sandbox"
INPUTS_LABEL = "org.xsched-ops.sandbox.inputs"

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
VARIANT = "minbase"
PACKAGES: tuple[str, ...] = (
    "python3",
    "libamdhip64-5",  # Debian's real HIP runtime; pulls libhsa-runtime64-1 and libamd-comgr2
    "rocminfo",
    "rocm-smi",
    "binutils",
    "procps",         # ps, pkill
    "iproute2",       # ss
    "util-linux",     # ipcs, ipcrm
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_CHANGES: tuple[str, ...] = (
    f"ENV PATH={DEFAULT_PATH}",
    "ENV LANG=C.UTF-8",
    'CMD ["sleep", "infinity"]',
    f"LABEL {SANDBOX_LABEL}=1",
)
# Left out of the archive: the engine provides these at run time, and apt caches are only weight.
ARCHIVE_EXCLUDES: tuple[str, ...] = ("./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*",
                                     "./var/cache/apt/archives/*.deb", "./var/cache/apt/*.bin",
                                     "./var/lib/apt/lists/*")


def inputs_hash() -> str:
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "suite": SUITE,
        "mirror": MIRROR,
        "variant": VARIANT,
        "packages": sorted(PACKAGES),
        "changes": list(IMAGE_CHANGES),
        "excludes": list(ARCHIVE_EXCLUDES),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def image_tag() -> str:
    return f"{REPOSITORY}:{inputs_hash()}"


def require_debootstrap() -> str:
    path = shutil.which("debootstrap")
    if path is None:
        raise SandboxError(
            "debootstrap is not installed on this host; it builds the sandbox image from the Debian archive",
            "install it with `apt-get install debootstrap`",
        )
    if os.geteuid() != 0:
        raise SandboxError("building the sandbox image needs root (debootstrap creates device nodes and owners)",
                           "run the first `xsched-ops sandbox create` as root (e.g. with sudo)")
    return path


def find_image(client: docker.DockerClient) -> str | None:
    tag = image_tag()
    try:
        engine.call_engine(client.images.get, tag)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as err:
        raise engine.engine_error(err, f"look up image {tag}") from err
    return tag


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One image build at a time on this host (parallel test runs share the image)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / "sandbox-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_image(client: docker.DockerClient, progress: ProgressCallback | None = None) -> str:
    """The sandbox image's tag, building the image first when the engine lacks it."""
    report = progress or (lambda _message: None)
    tag = find_image(client)
    if tag is not None:
        report(f"sandbox image: {tag} (cached)")
        return tag
    require_debootstrap()
    with _build_lock():
        tag = find_image(client)  # another process may have built it while we waited
        if tag is not None:
            report(f"sandbox image: {tag} (built by another process)")
            return tag
        return _build_image(client, report)


def _build_image(client: docker.DockerClient, report: ProgressCallback) -> str:
    tag = image_tag()
    report(f"sandbox image: {tag} not found; building it (debootstrap {VARIANT} {SUITE}, about a minute)")
    workdir = Path(tempfile.mkdtemp(prefix="xsched-ops-sandbox-", dir="/var/tmp"))
    rootfs = workdir / "rootfs"
    archive = workdir / "rootfs.tar"
    try:
        _debootstrap(rootfs, report)
        report(f"sandbox image: archiving {rootfs}")
        _archive(rootfs, archive)
        size_mb = archive.stat().st_size / 1e6
        report(f"sandbox image: importing {archive} ({size_mb:.0f} MB) into the engine as {tag}")
        repository, _, version = tag.partition(":")
        changes = [*IMAGE_CHANGES, f"LABEL {INPUTS_LABEL}={inputs_hash()}"]
        try:
            # Streams the file from disk to the engine (the SDK opens it and posts the handle).
            client.api.import_image_from_file(str(archive), repository=repository, tag=version, changes=changes)
        except docker.errors.APIError as err:
            raise engine.engine_error(err, f"import the sandbox image {tag}") from err
        if find_image(client) is None:
            raise SandboxError(f"the engine accepted the import but has no image {tag}",
                               "check the engine's log (journalctl -u docker) and retry")
        report(f"sandbox image: built {tag}")
        return tag
    finally:
        _remove_workdir(workdir)


def _debootstrap(rootfs: Path, report: ProgressCallback) -> None:
    argv = [
        require_debootstrap(), f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}",
        SUITE, str(rootfs), MIRROR,
    ]
    report(f"sandbox image: running {' '.join(argv)}")
    tail: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            report(f"  {line}")
            tail = [*tail[-19:], line]
    if process.returncode != 0:
        log = rootfs / "debootstrap" / "debootstrap.log"
        raise SandboxError(
            f"debootstrap failed (exit {process.returncode}): {' | '.join(tail[-5:])}",
            f"check the network access to {MIRROR}; the full log was {log}",
        )


def _archive(rootfs: Path, archive: Path) -> None:
    argv = ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive)]
    argv += [f"--exclude={pattern}" for pattern in ARCHIVE_EXCLUDES]
    argv.append(".")
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SandboxError(f"archiving {rootfs} failed: {completed.stderr.strip()[-500:]}",
                           "check the free space under /var/tmp")


def _mounts_below(folder: Path) -> list[str]:
    prefix = str(folder.resolve()) + "/"
    try:
        with open("/proc/mounts") as mounts:
            points = [line.split()[1].replace("\\040", " ") for line in mounts]
    except OSError:
        return []
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _remove_workdir(workdir: Path) -> None:
    # An interrupted debootstrap can leave /proc or /sys mounted inside the root file system;
    # unmount them first so that removing the folder never reaches into the host's.
    for point in _mounts_below(workdir):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    if _mounts_below(workdir):
        return  # leave it rather than delete through a mount
    shutil.rmtree(workdir, ignore_errors=True)
