"""What `xsched-ops sandbox prune` keeps and removes: the pure decisions, without Docker."""

from __future__ import annotations

from xsched_ops.sandbox.prune import (
    CURRENT,
    IN_USE,
    KEEP,
    REMOVE,
    ContainerRecord,
    ImageRecord,
    PruneEntry,
    PruneReport,
    containers_by_tag,
    human_size,
    normalize_reference,
    plan_prune,
)

REPO = "xsched-ops-sandbox"
CURRENT_TAG = f"{REPO}:cccccccccccccccc"
MB = 1_000_000


def image(version: str, image_id: str, size: int = 470 * MB, others: tuple[str, ...] = (),
          created: int = 0) -> ImageRecord:
    tag = f"{REPO}:{version}"
    return ImageRecord(tag=tag, image_id=image_id, size=size, image_tags=(tag, *others), created=created)


def by_tag(entries: list[PruneEntry]) -> dict[str, PruneEntry]:
    return {entry.tag.partition(":")[2]: entry for entry in entries}


def test_old_tags_go_and_the_current_stays() -> None:
    images = [image("cccccccccccccccc", "sha256:c", created=3), image("aaaaaaaaaaaaaaaa", "sha256:a", created=1),
              image("bbbbbbbbbbbbbbbb", "sha256:b", size=460 * MB, created=2)]
    entries = plan_prune(images, CURRENT_TAG, {})
    assert [e.tag.partition(":")[2][0] for e in entries] == ["a", "b", "c"]  # oldest first
    decided = by_tag(entries)
    assert decided["cccccccccccccccc"].action == KEEP and decided["cccccccccccccccc"].reason == CURRENT
    assert decided["aaaaaaaaaaaaaaaa"].action == REMOVE and decided["aaaaaaaaaaaaaaaa"].freed == 470 * MB
    assert decided["bbbbbbbbbbbbbbbb"].action == REMOVE and decided["bbbbbbbbbbbbbbbb"].freed == 460 * MB


def test_all_removes_the_current_too_unless_in_use() -> None:
    images = [image("cccccccccccccccc", "sha256:c"), image("aaaaaaaaaaaaaaaa", "sha256:a")]
    decided = by_tag(plan_prune(images, CURRENT_TAG, {}, include_current=True))
    assert decided["cccccccccccccccc"].action == REMOVE and decided["aaaaaaaaaaaaaaaa"].action == REMOVE
    decided = by_tag(plan_prune(images, CURRENT_TAG, {CURRENT_TAG: ("box",)}, include_current=True))
    assert decided["cccccccccccccccc"].action == KEEP and decided["cccccccccccccccc"].reason == IN_USE
    assert decided["cccccccccccccccc"].containers == ("box",)


def test_a_tag_in_use_is_kept_and_names_its_containers() -> None:
    images = [image("cccccccccccccccc", "sha256:c"), image("aaaaaaaaaaaaaaaa", "sha256:a")]
    entry = by_tag(plan_prune(images, CURRENT_TAG, {f"{REPO}:aaaaaaaaaaaaaaaa": ("t1", "t2")}))["aaaaaaaaaaaaaaaa"]
    assert (entry.action, entry.reason, entry.containers, entry.freed) == (KEEP, IN_USE, ("t1", "t2"), 0)


def test_a_tag_sharing_its_image_with_a_kept_tag_frees_nothing() -> None:
    shared = (CURRENT_TAG, f"{REPO}:prunetest-1")
    images = [ImageRecord(tag, "sha256:c", 470 * MB, shared) for tag in shared]
    entry = by_tag(plan_prune(images, CURRENT_TAG, {}))["prunetest-1"]
    assert entry.action == REMOVE and entry.freed == 0 and entry.kept_by == (CURRENT_TAG,)


def test_an_image_with_two_old_tags_counts_its_size_once() -> None:
    shared = (f"{REPO}:old-1", f"{REPO}:old-2")
    images = [ImageRecord(tag, "sha256:o", 470 * MB, shared) for tag in shared]
    entries = plan_prune(images, CURRENT_TAG, {})
    assert all(e.action == REMOVE and not e.kept_by for e in entries)
    assert sorted(e.freed for e in entries) == [0, 470 * MB]
    report = PruneReport(current=CURRENT_TAG, dry_run=True, include_current=False, entries=entries)
    assert report.freed == 470 * MB and len(report.removed) == 2


def test_a_tag_of_another_repository_keeps_the_image() -> None:
    images = [image("aaaaaaaaaaaaaaaa", "sha256:a", others=("mine:1",))]
    entry = plan_prune(images, CURRENT_TAG, {})[0]
    assert entry.action == REMOVE and entry.freed == 0 and entry.kept_by == ("mine:1",)


def test_only_the_sandbox_repository_is_ever_planned() -> None:
    foreign = ImageRecord("other:aaaaaaaaaaaaaaaa", "sha256:x", 10, ("other:aaaaaaaaaaaaaaaa",))
    near = ImageRecord("xsched-ops-sandbox-extra:1", "sha256:y", 10, ("xsched-ops-sandbox-extra:1",))
    assert plan_prune([foreign, near], CURRENT_TAG, {}) == []


def test_containers_use_the_tag_they_were_created_from() -> None:
    shared = (CURRENT_TAG, f"{REPO}:prunetest-1")
    images = [ImageRecord(tag, "sha256:c", 470 * MB, shared) for tag in shared]
    containers = [
        ContainerRecord("by-current", "sha256:c", CURRENT_TAG),
        ContainerRecord("by-test", "sha256:c", f"docker.io/library/{REPO}:prunetest-1"),
        ContainerRecord("elsewhere", "sha256:z", "debian:bookworm"),
    ]
    assert containers_by_tag(images, containers) == {CURRENT_TAG: ("by-current",), f"{REPO}:prunetest-1": ("by-test",)}


def test_a_container_made_from_the_image_id_uses_every_tag() -> None:
    shared = (CURRENT_TAG, f"{REPO}:prunetest-1")
    images = [ImageRecord(tag, "sha256:c", 470 * MB, shared) for tag in shared]
    # Created by id, or from a tag that has moved since: the engine then reports the id.
    users = containers_by_tag(images, [ContainerRecord("by-id", "sha256:c", "sha256:c")])
    assert users == {CURRENT_TAG: ("by-id",), f"{REPO}:prunetest-1": ("by-id",)}
    decided = by_tag(plan_prune(images, CURRENT_TAG, users, include_current=True))
    assert all(entry.action == KEEP for entry in decided.values())


def test_a_container_made_from_another_repositorys_tag_leaves_ours_free() -> None:
    images = [image("aaaaaaaaaaaaaaaa", "sha256:a", others=("mine:1",))]
    assert containers_by_tag(images, [ContainerRecord("box", "sha256:a", "mine:1")]) == {}


def test_reference_normalization_and_sizes() -> None:
    assert normalize_reference("xsched-ops-sandbox") == "xsched-ops-sandbox:latest"
    assert normalize_reference("docker.io/library/xsched-ops-sandbox:abc") == "xsched-ops-sandbox:abc"
    assert normalize_reference("localhost:5000/x") == "localhost:5000/x:latest"
    assert normalize_reference("sha256:abc") == "sha256:abc"
    assert human_size(468_842_664) == "469 MB"
    assert human_size(1_400_000_000) == "1.4 GB"
    assert human_size(0) == "0 B"


def test_json_document_has_a_schema_version() -> None:
    images = [image("cccccccccccccccc", "sha256:c"), image("aaaaaaaaaaaaaaaa", "sha256:a")]
    report = PruneReport(current=CURRENT_TAG, dry_run=True, include_current=False,
                         entries=plan_prune(images, CURRENT_TAG, {}))
    document = report.as_dict()
    assert document["version"] == 1 and document["repository"] == REPO and document["current"] == CURRENT_TAG
    assert document["total"] == {"images": 1, "freed": 470 * MB, "kept": 1, "failed": 0}
    assert {entry["action"] for entry in document["images"]} == {"keep", "remove"}
