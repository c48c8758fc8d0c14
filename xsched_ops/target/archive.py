"""Tar archives moved between host and container: built on disk, extracted safely.

Archives are spooled to temporary files, never held whole in memory. Extraction refuses any
member that would land outside the destination (absolute names, ``..``, links pointing out,
device files) before anything is written.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from xsched_ops.errors import UnsafeArchiveError

SPOOL_CHUNK = 1 << 20


def spool_chunks(chunks: Iterable[bytes]) -> BinaryIO:
    """Write an iterable of byte chunks to an anonymous temporary file, rewound for reading."""
    spool = tempfile.TemporaryFile(prefix="xsched-ops-archive-")  # noqa: SIM115 - caller closes
    try:
        for chunk in chunks:
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def build_archive(source: Path, member_name: str) -> BinaryIO:
    """A tar of ``source`` (file or folder) whose top member is ``member_name``, in a temporary file."""
    if not source.exists():
        from xsched_ops.errors import TargetPathError

        raise TargetPathError(f"{source}: no such file or folder on this host", "check the path")
    spool = tempfile.TemporaryFile(prefix="xsched-ops-archive-")  # noqa: SIM115 - caller closes
    with tarfile.open(fileobj=spool, mode="w") as archive:
        archive.add(str(source), arcname=member_name, recursive=True)
    spool.seek(0)
    return spool


def _unsafe_reason(member: tarfile.TarInfo, destination: str) -> str | None:
    name = member.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    resolved = os.path.normpath(os.path.join(destination, name))
    if resolved != destination and not resolved.startswith(destination + os.sep):
        return "path leaves the destination"
    if member.isdev() or member.isfifo():
        return "device or fifo"
    if member.issym():
        link = member.linkname
        if link.startswith("/"):
            return f"absolute symbolic link to {link}"
        link_resolved = os.path.normpath(os.path.join(os.path.dirname(resolved), link))
        if link_resolved != destination and not link_resolved.startswith(destination + os.sep):
            return f"symbolic link points outside the destination ({link})"
    if member.islnk():
        link_resolved = os.path.normpath(os.path.join(destination, member.linkname))
        if not link_resolved.startswith(destination + os.sep):
            return f"hard link points outside the destination ({member.linkname})"
    return None


def safe_extract(archive_file: BinaryIO, destination: Path, origin: str) -> list[str]:
    """Extract every member under ``destination`` or refuse the whole archive; return top-level names.

    ``origin`` names where the archive came from, for the error message.
    """
    destination.mkdir(parents=True, exist_ok=True)
    dest = os.path.realpath(destination)
    with tarfile.open(fileobj=archive_file, mode="r:*") as archive:
        members = archive.getmembers()
        for member in members:
            reason = _unsafe_reason(member, dest)
            if reason is not None:
                raise UnsafeArchiveError(
                    f"archive from {origin}: member {member.name!r} refused ({reason})",
                    "nothing was extracted; inspect the source for links or names that leave the folder",
                )
        # The data filter is a second line of defence (and drops set-uid bits and odd modes).
        archive.extractall(dest, members=members, filter="data")
    top = sorted({posixpath.normpath(m.name).split("/")[0] for m in members})
    return top
