"""Removing sandbox images left behind by older recipes.

Every change to the image's inputs makes a new ``xsched-ops-sandbox:<hash>`` tag (about 470 MB
each) and nothing removes the old ones. ``prune_images`` removes every tag of the repository
``xsched-ops-sandbox`` except the current one (``include_current`` removes that too) and except
the tags a container (running or stopped) still uses. Images of any other repository are never
touched, and tags are removed by name, never with force, so the engine keeps every image that
another tag or a container still needs.

A container uses a tag when it was created from that tag. A container created from the image's
id (or from a tag that has since moved) uses every tag of the image, since nothing tells which
one it meant. Removing a tag that shares its image with a tag that stays only untags it: it
frees nothing, and the report says so.

The decisions are made by ``containers_by_tag`` and ``plan_prune``, pure functions over plain
records; ``prune_images`` gathers the records from the engine and carries the decisions out.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import docker
import docker.errors
import requests.exceptions

from xsched_ops.errors import EngineUnavailableError
from xsched_ops.sandbox.image import REPOSITORY, image_tag
from xsched_ops.target import engine

SCHEMA_VERSION = 1

# Actions in a PruneEntry.
REMOVE = "remove"            # planned (dry run: what would go)
REMOVED = "removed"
KEEP = "keep"
FAILED = "failed"

# Reasons for keeping a tag.
CURRENT = "current"
IN_USE = "in-use"
GONE = "gone"                # removed by someone else between the listing and the removal


@dataclass(frozen=True)
class ImageRecord:
    """One tag of the sandbox repository, with the image it names."""

    tag: str                           # "xsched-ops-sandbox:<version>"
    image_id: str
    size: int                          # bytes
    image_tags: tuple[str, ...] = ()   # every tag of the image, in any repository (this one included)
    created: int = 0


@dataclass(frozen=True)
class ContainerRecord:
    name: str
    image_id: str
    image_ref: str                     # what it was created from: a tag, or the image id


@dataclass(frozen=True)
class PruneEntry:
    tag: str
    image_id: str
    size: int
    action: str                        # remove / removed / keep / failed
    reason: str = ""                   # for keep: current / in-use / gone
    containers: tuple[str, ...] = ()   # for in-use: the containers that use the tag
    freed: int = 0                     # bytes the removal frees (would free, before it is done)
    kept_by: tuple[str, ...] = ()      # other tags that keep the image when this one goes
    detail: str = ""                   # the engine's message when it refused

    def as_dict(self) -> dict[str, object]:
        return {
            "tag": self.tag, "id": self.image_id, "size": self.size, "action": self.action,
            "reason": self.reason or None, "containers": list(self.containers), "freed": self.freed,
            "kept_by": list(self.kept_by), "detail": self.detail or None,
        }


@dataclass
class PruneReport:
    current: str
    dry_run: bool
    include_current: bool
    entries: list[PruneEntry] = field(default_factory=list)

    @property
    def removed(self) -> list[PruneEntry]:
        wanted = REMOVE if self.dry_run else REMOVED
        return [entry for entry in self.entries if entry.action == wanted]

    @property
    def kept(self) -> list[PruneEntry]:
        return [entry for entry in self.entries if entry.action == KEEP]

    @property
    def failed(self) -> list[PruneEntry]:
        return [entry for entry in self.entries if entry.action == FAILED]

    @property
    def freed(self) -> int:
        return sum(entry.freed for entry in self.removed)

    def as_dict(self) -> dict[str, object]:
        return {
            "version": SCHEMA_VERSION,
            "repository": REPOSITORY,
            "current": self.current,
            "dry_run": self.dry_run,
            "all": self.include_current,
            "images": [entry.as_dict() for entry in self.entries],
            "total": {"images": len(self.removed), "freed": self.freed, "kept": len(self.kept),
                      "failed": len(self.failed)},
        }


def normalize_reference(reference: str) -> str:
    """``docker.io/library/name`` -> ``name:latest``; ids and tagged names come back as they are."""
    if reference.startswith("sha256:"):
        return reference
    for prefix in ("docker.io/library/", "library/"):
        if reference.startswith(prefix):
            reference = reference[len(prefix):]
            break
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        reference += ":latest"
    return reference


def containers_by_tag(images: Iterable[ImageRecord], containers: Iterable[ContainerRecord]) -> dict[str, tuple[str, ...]]:
    """For each tag in ``images``: the names of the containers that use it (tags no container uses are left out)."""
    tags_of_image: dict[str, list[ImageRecord]] = {}
    for record in images:
        tags_of_image.setdefault(record.image_id, []).append(record)
    users: dict[str, list[str]] = {}
    for container in containers:
        records = tags_of_image.get(container.image_id)
        if not records:
            continue
        reference = normalize_reference(container.image_ref)
        all_tags = {tag for record in records for tag in (*record.image_tags, record.tag)}
        if reference in all_tags:
            chosen = [record.tag for record in records if record.tag == reference]  # empty: another repository's tag
        else:
            chosen = [record.tag for record in records]  # created by id, or from a tag that has moved since
        for tag in chosen:
            users.setdefault(tag, []).append(container.name)
    return {tag: tuple(sorted(names)) for tag, names in users.items()}


def plan_prune(images: Sequence[ImageRecord], current_tag: str, in_use: Mapping[str, Sequence[str]],
               include_current: bool = False) -> list[PruneEntry]:
    """Keep or remove each tag of ``images``; ``in_use`` maps a tag to the containers that use it.

    The current tag stays unless ``include_current``; a tag in use always stays; every other tag
    of the repository goes. ``freed`` is the image's size on the last tag whose removal leaves
    its image without any tag, 0 where another tag (kept, or of another repository) keeps it.
    """
    entries: list[PruneEntry] = []
    for record in sorted(images, key=lambda r: (r.created, r.tag)):
        if not record.tag.startswith(f"{REPOSITORY}:"):
            continue  # never anything outside the repository
        users = tuple(in_use.get(record.tag, ()))
        if users:
            entries.append(PruneEntry(record.tag, record.image_id, record.size, KEEP, IN_USE, containers=users))
        elif record.tag == current_tag and not include_current:
            entries.append(PruneEntry(record.tag, record.image_id, record.size, KEEP, CURRENT))
        else:
            entries.append(PruneEntry(record.tag, record.image_id, record.size, REMOVE))
    removed_tags = {entry.tag for entry in entries if entry.action == REMOVE}
    tags_of_image: dict[str, set[str]] = {}
    for record in images:
        tags_of_image.setdefault(record.image_id, set()).update((*record.image_tags, record.tag))
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry.action != REMOVE:
            continue
        remaining = tuple(sorted(tags_of_image[entry.image_id] - removed_tags))
        if remaining:
            entries[index] = replace(entry, kept_by=remaining)
            continue
        # The image goes with its last tag: the size counts once, on the last one removed.
        previous = seen.get(entry.image_id)
        if previous is not None:
            entries[previous] = replace(entries[previous], freed=0)
        entries[index] = replace(entry, freed=entry.size)
        seen[entry.image_id] = index
    return entries


def _matches(tag: str, patterns: Sequence[str]) -> bool:
    if not patterns:
        return True
    version = tag.partition(":")[2]
    return any(fnmatch.fnmatchcase(version, pattern) or fnmatch.fnmatchcase(tag, pattern) for pattern in patterns)


def _image_records(client: docker.DockerClient) -> list[ImageRecord]:
    records = []
    for summary in engine.call_engine(client.api.images, name=REPOSITORY):
        all_tags = tuple(tag for tag in summary.get("RepoTags") or () if tag != "<none>:<none>")
        for tag in all_tags:
            if tag.startswith(f"{REPOSITORY}:"):
                records.append(ImageRecord(tag=tag, image_id=summary["Id"], size=int(summary.get("Size") or 0),
                                           image_tags=all_tags, created=int(summary.get("Created") or 0)))
    return records


def _container_records(client: docker.DockerClient) -> list[ContainerRecord]:
    records = []
    for summary in engine.call_engine(client.api.containers, all=True):
        names = [name.lstrip("/") for name in summary.get("Names") or ()]
        records.append(ContainerRecord(name=names[0] if names else summary["Id"][:12],
                                       image_id=summary.get("ImageID", ""), image_ref=summary.get("Image", "")))
    return records


def _remove(client: docker.DockerClient, entry: PruneEntry) -> PruneEntry:
    assert entry.tag.startswith(f"{REPOSITORY}:")
    try:
        # By name and without force: the engine only untags when another tag keeps the image.
        answer = engine.call_engine(client.api.remove_image, entry.tag, force=False, noprune=False)
    except docker.errors.NotFound:
        return replace(entry, action=KEEP, reason=GONE, freed=0)
    except docker.errors.APIError as err:
        detail = " ".join(str(err.explanation or err).split())[:300]
        if err.status_code == 409:  # a container appeared since the listing
            return replace(entry, action=KEEP, reason=IN_USE, freed=0, detail=detail)
        return replace(entry, action=FAILED, freed=0, detail=detail)
    deleted = any("Deleted" in item for item in answer or ())
    return replace(entry, action=REMOVED, freed=entry.size if deleted else 0)


def prune_images(docker_host: str | None = None, include_current: bool = False, dry_run: bool = False,
                 patterns: Sequence[str] = ()) -> PruneReport:
    """Remove the sandbox repository's old tags (see the module's docstring); ``patterns`` limit which tags count."""
    current = image_tag()
    report = PruneReport(current=current, dry_run=dry_run, include_current=include_current)
    client = engine.connect(docker_host)
    try:
        try:
            images = [record for record in _image_records(client) if _matches(record.tag, patterns)]
            containers = _container_records(client)
        except docker.errors.APIError as err:
            raise engine.engine_error(err, f"list the {REPOSITORY} images and the containers") from err
        except requests.exceptions.RequestException as err:
            raise EngineUnavailableError(f"the Docker engine stopped answering ({err})", engine.ENGINE_START_HINT) from err
        report.entries = plan_prune(images, current, containers_by_tag(images, containers), include_current)
        if dry_run:
            return report
        for index, entry in enumerate(report.entries):
            if entry.action != REMOVE:
                continue
            try:
                report.entries[index] = _remove(client, entry)
            except requests.exceptions.RequestException as err:
                report.entries[index] = replace(entry, action=FAILED, freed=0, detail=f"the engine stopped answering: {err}")
        return report
    finally:
        client.close()


def human_size(size: int) -> str:
    if size >= 1_000_000_000:
        return f"{size / 1e9:.1f} GB"
    if size >= 1_000_000:
        return f"{size / 1e6:.0f} MB"
    if size >= 1_000:
        return f"{size / 1e3:.0f} kB"
    return f"{size} B"
