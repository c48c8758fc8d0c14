"""The sandbox image: a Debian bookworm root file system made by debootstrap, then imported.

No registry is needed: debootstrap fetches Debian's packages (python3, Debian's real HIP runtime
``libamdhip64-5``, rocminfo, rocm-smi, binutils, ...) from a Debian mirror into a folder under
/var/tmp, which is archived to a tar on disk and streamed to the engine's import endpoint. The
image is tagged ``xsched-ops-sandbox:<hash>``, the hash covering what goes into the image (suite,
package list, image settings and ``RECIPE_VERSION``), and is built once and reused.

The mirror is the user's own, never one written here: ``mirror=`` (the command line's
``--mirror``), else ``$XSCHED_OPS_DEBIAN_MIRROR``, else the host's apt configuration (deb822
``URIs:`` of ``/etc/apt/sources.list.d/*.sources``, ``deb URI SUITE ...`` lines of
``/etc/apt/sources.list`` and ``sources.list.d/*.list``): the first ``deb`` entry for the suite,
else for another Debian release. Where it came from is not part of the hash: every mirror of the
suite serves the same packages.
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
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from xsched_ops.errors import SandboxError, UsageError
from xsched_ops.sandbox.install import cache_root
from xsched_ops.target import engine

ProgressCallback = Callable[[str], None]

# Bump when the way the image is built changes, so that old images are not reused.
RECIPE_VERSION = 1

REPOSITORY = "xsched-ops-sandbox"
SANDBOX_LABEL = "org.xsched-ops.sandbox"
INPUTS_LABEL = "org.xsched-ops.sandbox.inputs"

SUITE = "bookworm"
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


# -- the Debian mirror ------------------------------------------------------------------------
MIRROR_VARIABLE = "XSCHED_OPS_DEBIAN_MIRROR"
APT_SOURCES_LIST = "etc/apt/sources.list"
APT_SOURCES_PARTS = "etc/apt/sources.list.d"
# Schemes debootstrap can fetch from (cdrom:, copy:, tor+http: and the like it cannot).
MIRROR_SCHEMES = ("http", "https", "ftp", "file")
# Names of Debian releases: a mirror listed for one of them serves the others too (not Ubuntu's).
DEBIAN_RELEASES = frozenset({"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid", "oldoldstable",
                             "oldstable", "stable", "testing", "unstable"})


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` or ``deb-src`` entry of the apt configuration, and where it was written."""

    type: str
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: str  # "FILE:LINE"


def parse_sources_list(text: str, origin: str) -> list[AptSource]:
    """Entries of the one-line format: ``deb [ opt=value ... ] URI SUITE [COMPONENT ...]``, ``#`` comments."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        words = line.split()
        if len(words) < 3 or words[0] not in ("deb", "deb-src"):
            continue
        kind, rest = words[0], line[len(words[0]):].strip()
        if rest.startswith("["):  # options: [arch=amd64 signed-by=/usr/share/keyrings/x.gpg]
            closing = rest.find("]")
            if closing < 0:
                continue
            rest = rest[closing + 1:].strip()
        fields = _join_brackets(rest.split())
        if len(fields) < 2:
            continue
        entries.append(AptSource(kind, fields[0], (fields[1],), tuple(fields[2:]), f"{origin}:{number}"))
    return entries


def _join_brackets(words: list[str]) -> list[str]:
    """Words with a ``[`` open until its ``]`` joined again: ``cdrom:[Debian GNU/Linux 12 ...]/`` is one URI."""
    joined: list[str] = []
    for word in words:
        if joined and joined[-1].count("[") > joined[-1].count("]"):
            joined[-1] += " " + word
        else:
            joined.append(word)
    return joined


def parse_deb822_sources(text: str, origin: str) -> list[AptSource]:
    """Entries of deb822 stanzas (``Types:``, ``URIs:``, ``Suites:``, ``Components:``, ``Enabled:``)."""
    entries: list[AptSource] = []
    stanza: dict[str, str] = {}
    start = 1
    current: str | None = None

    def flush() -> None:
        if stanza.get("enabled", "yes").strip().lower() not in ("no", "false", "0"):
            for kind in stanza.get("types", "").split():
                if kind not in ("deb", "deb-src"):  # apt ignores other types too
                    continue
                for uri in stanza.get("uris", "").split():
                    entries.append(AptSource(kind, uri, tuple(stanza.get("suites", "").split()),
                                             tuple(stanza.get("components", "").split()), f"{origin}:{start}"))
        stanza.clear()

    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                flush()
            current = None
            continue
        if line[0] in " \t":  # a continuation of the field above
            if current is not None:
                stanza[current] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        if not stanza:
            start = number
        current = name.strip().lower()
        stanza[current] = value.strip()
    return entries


def host_apt_sources(root: Path = Path("/")) -> list[AptSource]:
    """Every entry of the host's apt configuration, in apt's order (sources.list, then the parts by name)."""
    entries: list[AptSource] = []
    files = [root / APT_SOURCES_LIST]
    parts = root / APT_SOURCES_PARTS
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        origin = "/" + str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        parse = parse_deb822_sources if path.suffix == ".sources" else parse_sources_list
        entries += parse(text, origin)
    return entries


def _fetchable(uri: str) -> bool:
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme not in MIRROR_SCHEMES:
        return False
    return bool(parsed.path) if parsed.scheme == "file" else bool(parsed.hostname)


def choose_mirror(entries: list[AptSource], suite: str = SUITE) -> AptSource | None:
    """The first ``deb`` entry debootstrap can fetch ``suite`` from: one for the suite, else for another Debian release."""
    usable = [entry for entry in entries if entry.type == "deb" and _fetchable(entry.uri)]
    for wanted in (lambda name: name == suite, lambda name: name in DEBIAN_RELEASES):
        for entry in usable:
            if any(wanted(name) for name in entry.suites):
                return entry
    return None


def check_mirror_url(url: str, source: str) -> str:
    """``url`` when debootstrap can fetch from it, else one line naming where it came from (exit 2)."""
    if not _fetchable(url.strip()):
        raise UsageError(f"{source} {url!r} is not a Debian mirror URL debootstrap can fetch from",
                         f"give an {', '.join(s + '://' for s in MIRROR_SCHEMES)} URL of a Debian {SUITE} mirror")
    return url.strip().rstrip("/")


def debian_mirror(mirror: str | None = None, root: Path = Path("/")) -> tuple[str, str]:
    """``(URL, where it came from)``: ``mirror``, else ``$XSCHED_OPS_DEBIAN_MIRROR``, else the host's apt configuration."""
    if mirror:
        return check_mirror_url(mirror, "--mirror"), "--mirror"
    if os.environ.get(MIRROR_VARIABLE, "").strip():
        return check_mirror_url(os.environ[MIRROR_VARIABLE], f"${MIRROR_VARIABLE}"), f"${MIRROR_VARIABLE}"
    chosen = choose_mirror(host_apt_sources(root))
    if chosen is None:
        raise SandboxError(
            f"no Debian mirror to build the sandbox image from: this host's apt configuration (/{APT_SOURCES_LIST}, "
            f"/{APT_SOURCES_PARTS}/*.sources and *.list) lists no deb entry for Debian {SUITE} or another release",
            f"give one with {MIRROR_VARIABLE}=URL (or `xsched-ops sandbox create NAME --mirror URL`), "
            f"a mirror of Debian {SUITE}")
    return chosen.uri.rstrip("/"), chosen.origin


def inputs_hash() -> str:
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "suite": SUITE,
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


def ensure_image(client: docker.DockerClient, progress: ProgressCallback | None = None,
                 mirror: str | None = None) -> str:
    """The sandbox image's tag, building the image first when the engine lacks it.

    ``mirror`` (a Debian mirror URL) is used only for a build; see ``debian_mirror``.
    """
    report = progress or (lambda _message: None)
    tag = find_image(client)
    if tag is not None:
        report(f"sandbox image: {tag} (cached)")
        return tag
    mirror_url, mirror_origin = debian_mirror(mirror)
    require_debootstrap()
    with _build_lock():
        tag = find_image(client)  # another process may have built it while we waited
        if tag is not None:
            report(f"sandbox image: {tag} (built by another process)")
            return tag
        report(f"sandbox image: Debian mirror {mirror_url} (from {mirror_origin})")
        return _build_image(client, report, mirror_url)


def _build_image(client: docker.DockerClient, report: ProgressCallback, mirror: str) -> str:
    tag = image_tag()
    report(f"sandbox image: {tag} not found; building it (debootstrap {VARIANT} {SUITE}, about a minute)")
    workdir = Path(tempfile.mkdtemp(prefix="xsched-ops-sandbox-", dir="/var/tmp"))
    rootfs = workdir / "rootfs"
    archive = workdir / "rootfs.tar"
    try:
        _debootstrap(rootfs, report, mirror)
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


def _debootstrap(rootfs: Path, report: ProgressCallback, mirror: str) -> None:
    argv = [
        require_debootstrap(), f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}",
        SUITE, str(rootfs), mirror,
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
            f"check the network access to {mirror} (another mirror: {MIRROR_VARIABLE}=URL); the full log was {log}",
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
