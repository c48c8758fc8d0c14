"""The loader model against the real loader (`ld.so --list`) on every ELF file of the sandbox image.

For every ELF file (programs and shared libraries) under /usr/bin and /usr/lib/x86_64-linux-gnu
(subfolders included, symbolic links left out: they name the same files), the file the model
chooses for each needed name must be the file the container's own loader chooses, compared by
real path inside the container. The real loader runs in one `docker exec` (a shell loop over all
files); files it refuses ("not a dynamic executable", wrong class...) are skipped and counted.
"""

from __future__ import annotations

import re
import uuid

import pytest

from xsched_ops.elf import clear_cache
from xsched_ops.loader import analyze
from xsched_ops.sandbox import containers as sandbox_containers
from xsched_ops.target.container import ContainerTarget

pytestmark = pytest.mark.docker

FOLDERS = ("/usr/bin", "/usr/lib/x86_64-linux-gnu")
LOADER = "/lib64/ld-linux-x86-64.so.2"
FILE_MARK = "@@@FILE "
RC_MARK = "@@@RC "
# One exec for all files: a separator line before each file's listing and its exit status after.
LIST_SCRIPT = (
    f'for f in "$@"; do echo "{FILE_MARK}$f"; {LOADER} --list "$f" 2>&1; echo "{RC_MARK}$?"; done'
)
# "\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f...)" or "\tlibfoo.so.1 => not found"
LISTED = re.compile(r"^\t(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$")
# A needed name the loader stopped on (it does so for a library given as the main object).
CANNOT_OPEN = re.compile(r"error while loading shared libraries: (\S+): cannot open shared object file")

MIN_COMPARED = 500  # the image holds ~700 ELF files; far fewer means the walk or the parse broke


@pytest.fixture(scope="module")
def sandbox(sandbox_image: str):
    name = f"xo-ldd-{uuid.uuid4().hex[:8]}"
    try:
        sandbox_containers.create_sandbox(name, "ok")
        target = ContainerTarget.open(name)
        try:
            yield target
        finally:
            target.close()
    finally:
        try:
            sandbox_containers.remove_sandbox(name)
        except Exception:  # never created (create_sandbox removes what it half made)
            pass


def _elf_files(fs, folder: str) -> list[str]:
    files = []
    for entry in sorted(fs.listdir(folder)):
        path = f"{folder}/{entry}"
        mode = fs.lstat(path).st_mode & 0o170000
        if mode == 0o040000:
            files.extend(_elf_files(fs, path))
        elif mode == 0o100000:
            with fs.open(path) as handle:
                if handle.read(4) == b"\x7fELF":
                    files.append(path)
    return files


def _real_loader(target: ContainerTarget, files: list[str], env: dict[str, str]) -> dict[str, tuple[int, list[str]]]:
    result = target.exec(["sh", "-c", LIST_SCRIPT, "sh", *files], env=env, cwd="/", timeout=300)
    assert result.exit_code == 0, result.stderr
    listings: dict[str, tuple[int, list[str]]] = {}
    current: str | None = None
    lines: list[str] = []
    for line in result.stdout.splitlines():
        if line.startswith(FILE_MARK):
            current, lines = line[len(FILE_MARK):], []
        elif line.startswith(RC_MARK):
            assert current is not None
            listings[current] = (int(line[len(RC_MARK):]), lines)
            current = None
        elif current is not None:
            lines.append(line)
    assert set(listings) == set(files), "the loop's output lost files"
    return listings


def _real_choices(exit_code: int, lines: list[str]) -> dict[str, str | None] | None:
    """name -> path the real loader chose (None: not found); None when it refused the file."""
    choices: dict[str, str | None] = {}
    for line in lines:
        listed = LISTED.match(line)
        if listed:
            name, path = listed.groups()
            choices.setdefault(name, None if path == "not found" else path)
            continue
        missing = CANNOT_OPEN.search(line)
        if missing:
            choices.setdefault(missing.group(1), None)
    if exit_code != 0 and not choices:
        return None  # "not a dynamic executable", wrong class, ...: nothing to compare
    return choices


def test_model_chooses_the_same_files_as_the_real_loader(sandbox: ContainerTarget) -> None:
    fs = sandbox.fs()
    env = dict(sandbox.environment())
    files = [path for folder in FOLDERS for path in _elf_files(fs, folder)]
    listings = _real_loader(sandbox, files, env)

    clear_cache()
    compared, names_compared, skipped = 0, 0, []
    disagreements: list[str] = []
    for path in files:
        exit_code, lines = listings[path]
        real = _real_choices(exit_code, lines)
        if real is None:
            skipped.append(f"{path}: {' / '.join(lines)[:120]}")
            continue
        report = analyze(fs, path, env, "/", check_symbols=False)
        model: dict[str, str | None] = {}
        for edge in report.edges:
            model.setdefault(edge.name, edge.path)
        compared += 1
        for name, real_path in real.items():
            names_compared += 1
            if name not in model:
                disagreements.append(f"{path}: {name}: real loader {real_path}, model never asks for it")
                continue
            wanted = fs.realpath(real_path) if real_path else None
            chosen = fs.realpath(model[name]) if model[name] else None
            if wanted != chosen:
                disagreements.append(f"{path}: {name}: real loader {wanted}, model {chosen}")
        if exit_code == 0:
            # The same set of libraries, not only the same choice per listed name.
            real_set = {fs.realpath(p) for p in real.values() if p}
            model_set = {o.real_path for o in report.objects if o.kind in ("needed", "preload")}
            model_set.discard(fs.realpath(path))
            if real_set != model_set:
                disagreements.append(f"{path}: loaded set differs: only real {sorted(real_set - model_set)}, "
                                     f"only model {sorted(model_set - real_set)}")

    print(f"{len(files)} ELF files; compared {compared} ({names_compared} needed names); "
          f"skipped {len(skipped)} the real loader refused; {len(disagreements)} disagreements")
    for line in skipped:
        print("  skipped", line)
    assert not disagreements, "\n".join(disagreements[:50])
    assert compared >= MIN_COMPARED, f"only {compared} files compared of {len(files)}"
    assert names_compared >= 2 * MIN_COMPARED
