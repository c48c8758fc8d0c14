"""Damaged files (issue 14, part 5): `xsched-ops ldd` gives the real loader's verdict, in its words.

Each kind of damage is put where a small program's DT_NEEDED library (``libfoo.so``, found
through LD_LIBRARY_PATH) or an LD_PRELOAD entry is, the real program is run and its exit status
and stderr are compared with the model's: truncated at many offsets (too short, cut in the program
headers: "cannot read file data", cut after them: the process dies of SIGBUS without a word),
another ELF class (a real 32-bit build), another byte order, another machine, other header damage,
a symbolic-link loop and a directory. For a DT_NEEDED name glibc skips a file of another class or
machine and goes on searching; a loop makes it give up the rest of that path list. The same cases
run in a sandbox container against its own loader.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from loader_fixtures import REAL_LOADER, compile_program, compile_shared, have_toolchain

from xsched_ops.cli import invoke
from xsched_ops.elf import clear_cache
from xsched_ops.errors import ElfError
from xsched_ops.loader import analyze
from xsched_ops.target.fs import HostFS

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs gcc and the x86-64 loader")

FOO = "int foo(void){return 7;} int foo_data = 3;"
MAIN = "int foo(void); int main(void){ return foo() == 7 ? 0 : 1; }"
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C"}


def _patched(offset: int, fmt: str, value: int) -> Callable[[bytes], bytes]:
    def patch(data: bytes) -> bytes:
        changed = bytearray(data)
        struct.pack_into(fmt, changed, offset, value)
        return bytes(changed)
    return patch


# Header damage, each with glibc's verdict for a DT_NEEDED library (None: skipped, not found).
HEADER_DAMAGE = {
    "other-byte-order": (_patched(5, "B", 2), "ELF file data encoding not little-endian"),
    "wrong-machine": (_patched(18, "<H", 183), None),
    "bad-magic": (_patched(1, "B", ord("X")), "invalid ELF header"),
    "ident-version": (_patched(6, "B", 2), "ELF file version ident does not match current one"),
    "os-abi": (_patched(7, "B", 9), "ELF file OS ABI invalid"),
    "abi-version": (_patched(8, "B", 1), "ELF file ABI version invalid"),
    "padding": (_patched(12, "B", 1), "nonzero padding in e_ident"),
    "e-version": (_patched(20, "<I", 2), "ELF file version does not match current one"),
    "relocatable": (_patched(16, "<H", 1), "only ET_DYN and ET_EXEC can be loaded"),
    "phentsize": (_patched(54, "<H", 55), "ELF file's phentsize not the expected size"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    library = compile_shared(FOO, root / "good" / "libfoo.so", soname="libfoo.so")
    program = compile_program(MAIN, root / "prog", flags=[f"-L{root / 'good'}", "-lfoo"])
    files = {"root": root, "good": library, "program": program}
    (root / "x32").mkdir()
    source = root / "x32" / "foo.c"
    source.write_text(FOO)
    made = subprocess.run(["gcc", "-m32", "-shared", "-nostdlib", "-fPIC", "-Wl,-soname,libfoo.so", str(source),
                           "-o", str(root / "x32" / "libfoo.so")], capture_output=True)
    if made.returncode == 0:
        files["elf32"] = root / "x32" / "libfoo.so"
    return files


def _place(built: dict[str, Path], label: str, make: Callable[[Path], None]) -> Path:
    """A folder ``label`` holding a damaged ``libfoo.so`` made by ``make(path)``."""
    folder = built["root"] / label
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    make(folder / "libfoo.so")
    return folder


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _real(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    return result.returncode, result.stderr.strip()


def _assert_same_verdict(program: Path, env: dict[str, str]) -> tuple[int, object]:
    """Run ``program`` for real and in the model; the same outcome, in the same words."""
    code, stderr = _real([str(program)], env)
    clear_cache()
    report = analyze(HostFS(), str(program), env)
    if code == -7:  # SIGBUS: the loader touched a page past the end of a file; nothing is printed
        assert stderr == "" and not report.would_start
        assert report.fatal_error.startswith("killed by SIGBUS while loading "), report.fatal_error
    elif code == 127:
        assert report.fatal_error is not None and f"{program}: {report.fatal_error}" == stderr
    else:
        assert (code, stderr) == (0, "") and report.would_start and report.fatal_error is None, report.fatal_error
    return code, report


def _cut_offsets(data: bytes) -> list[int]:
    """Offsets that matter (inside the header, the program headers, the dynamic section, page
    ends, the section headers) and a sweep every 251 bytes."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    phdr_end = phoff + 56 * phnum
    dynamic = next(struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * i)[2] for i in range(phnum)
                   if struct.unpack_from("<I", data, phoff + 56 * i)[0] == 2)
    special = {0, 1, 15, 16, 52, 63, 64, 65, phdr_end - 1, phdr_end, dynamic, dynamic + 8, dynamic + 200,
               4096, 8192, 12288, len(data) - 1}
    return sorted({offset for offset in special | set(range(0, len(data), 251)) if 0 <= offset < len(data)})


def test_truncated_at_every_offset_as_the_real_loader_says(built: dict[str, Path]) -> None:
    data = built["good"].read_bytes()
    outcomes: dict[int, int] = {}
    for offset in _cut_offsets(data):
        folder = _place(built, f"cut{offset}", _write(data[:offset]))
        code, report = _assert_same_verdict(built["program"], {**BASE_ENV, "LD_LIBRARY_PATH": str(folder)})
        outcomes[code] = outcomes.get(code, 0) + 1
        if offset == 64:  # cut right after the ELF header
            assert report.not_found[0].message == "cannot read file data"
    # Every kind of verdict was met: "file too short"/"cannot read file data", SIGBUS, and a start
    # (a cut in the section headers only).
    assert set(outcomes) == {127, -7, 0}, outcomes


def test_header_damage_as_the_real_loader_says(built: dict[str, Path]) -> None:
    data = built["good"].read_bytes()
    for label, (damage, glibc_text) in HEADER_DAMAGE.items():
        folder = _place(built, label, _write(damage(data)))
        library = folder / "libfoo.so"
        code, report = _assert_same_verdict(built["program"], {**BASE_ENV, "LD_LIBRARY_PATH": str(folder)})
        assert code == 127
        expected = (f"{library}: {glibc_text}" if glibc_text
                    else "libfoo.so: cannot open shared object file: No such file or directory")
        assert report.fatal_error == f"error while loading shared libraries: {expected}", label
        # As a preload the loader prints its reason and goes on.
        env = {**BASE_ENV, "LD_PRELOAD": str(library)}
        _, stderr = _real(["/bin/true"], env)
        clear_cache()
        preload_report = analyze(HostFS(), "/bin/true", env)
        assert [p.warning for p in preload_report.failed_preloads] == [stderr], label
        assert preload_report.would_start


def test_wrong_class_and_machine_are_skipped_and_the_search_goes_on(built: dict[str, Path]) -> None:
    if "elf32" not in built:
        pytest.skip("no gcc -m32")
    data = built["good"].read_bytes()
    elf32 = _place(built, "elf32", lambda path: shutil.copy(built["elf32"], path))
    machine = _place(built, "aarch64", _write(HEADER_DAMAGE["wrong-machine"][0](data)))
    good = built["good"].parent
    code, report = _assert_same_verdict(built["program"], {**BASE_ENV, "LD_LIBRARY_PATH": str(elf32)})
    assert code == 127 and report.fatal_error.endswith("libfoo.so: wrong ELF class: ELFCLASS32")
    code, report = _assert_same_verdict(built["program"],
                                        {**BASE_ENV, "LD_LIBRARY_PATH": f"{elf32}:{machine}:{good}"})
    assert code == 0
    outcomes = [step.outcome for step in report.object_for("libfoo.so").search if "subfolder" not in step.source]
    assert outcomes == ["skipped: wrong ELF class (ELFCLASS32)", "skipped: wrong machine (AArch64)", "found"]
    env = {**BASE_ENV, "LD_PRELOAD": str(elf32 / "libfoo.so")}
    _, stderr = _real(["/bin/true"], env)
    assert [p.warning for p in analyze(HostFS(), "/bin/true", env).failed_preloads] == [stderr]
    assert "(wrong ELF class: ELFCLASS32)" in stderr


def test_symbolic_link_loop_ends_its_path_list(built: dict[str, Path]) -> None:
    loop = _place(built, "loop", lambda path: os.symlink(path.name, path))
    good = built["good"].parent
    # The loop makes glibc give up LD_LIBRARY_PATH: the good folder after it is never searched.
    code, report = _assert_same_verdict(built["program"], {**BASE_ENV, "LD_LIBRARY_PATH": f"{loop}:{good}"})
    assert code == 127
    tried = report.not_found[0].tried
    assert tried[0].outcome.startswith("skipped: cannot open (Error 40)")
    assert not any(step.path.startswith(str(good)) for step in tried)
    env = {**BASE_ENV, "LD_PRELOAD": str(loop / "libfoo.so")}
    _, stderr = _real(["/bin/true"], env)
    assert [p.warning for p in analyze(HostFS(), "/bin/true", env).failed_preloads] == [stderr]


def test_a_directory_is_a_file_the_loader_cannot_read(built: dict[str, Path]) -> None:
    folder = _place(built, "directory", lambda path: path.mkdir())
    code, report = _assert_same_verdict(built["program"], {**BASE_ENV, "LD_LIBRARY_PATH": str(folder)})
    assert code == 127 and report.fatal_error.endswith(f"{folder}/libfoo.so: cannot read file data: Error 21")
    env = {**BASE_ENV, "LD_PRELOAD": str(folder / "libfoo.so")}
    _, stderr = _real(["/bin/true"], env)
    assert [p.warning for p in analyze(HostFS(), "/bin/true", env).failed_preloads] == [stderr]


def test_ldd_command_prints_the_loaders_words(built: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LD_LIBRARY_PATH", "LD_PRELOAD", "LD_BIND_NOW"):
        monkeypatch.delenv(name, raising=False)
    data = built["good"].read_bytes()
    cases = {"cut64": _write(data[:64]), "sigbus": _write(data[:4096]),
             "big": _write(HEADER_DAMAGE["other-byte-order"][0](data))}
    for label, make in cases.items():
        folder = _place(built, f"cli-{label}", make)
        env = {**BASE_ENV, "LD_LIBRARY_PATH": str(folder)}
        code, stderr = _real([str(built["program"])], env)
        clear_cache()
        assert invoke(["ldd", "--local", "--env", f"LD_LIBRARY_PATH={folder}", str(built["program"])]) == 1
        text = capsys.readouterr().out
        assert "(starts)" not in text and "(does not start)" in text
        if label in ("cut64", "sigbus"):  # found, then refused by the loader: not "not found"
            assert "not loaded: " in text and "not found:" not in text, text
        if code == -7:
            assert "killed by SIGBUS" in text, text
        else:
            assert stderr.removeprefix(f"{built['program']}: ") in text, text
        assert invoke(["ldd", "--local", "--json", "--env", f"LD_LIBRARY_PATH={folder}", str(built["program"])]) == 1
        report = json.loads(capsys.readouterr().out)["reports"][0]
        assert report["would_start"] is False


SANDBOX_SCRIPT = 'for d in "$@"; do echo "@@@ $d"; LD_LIBRARY_PATH=/opt/hA/$d /opt/hA/prog 2>&1; echo "@@@rc $?"; done'


@pytest.mark.docker
def test_damaged_files_in_a_container_as_its_loader_says(built: dict[str, Path], sandbox_image: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import docker

    from xsched_ops.target.container import MANAGED_LABEL, ContainerTarget

    data = built["good"].read_bytes()
    stage = built["root"] / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    shutil.copy(built["program"], stage / "prog")
    damaged = {"cut64": data[:64], "cut600": data[:600], "sigbus": data[:4096],
               "big": HEADER_DAMAGE["other-byte-order"][0](data), "machine": HEADER_DAMAGE["wrong-machine"][0](data)}
    if "elf32" in built:
        damaged["elf32"] = built["elf32"].read_bytes()
    for label, content in damaged.items():
        (stage / label).mkdir()
        (stage / label / "libfoo.so").write_bytes(content)
    client = docker.from_env()
    name = f"hA-damaged-{uuid.uuid4().hex[:8]}"
    container = client.containers.run(sandbox_image, name=name, detach=True, init=True,
                                      labels={MANAGED_LABEL: "1", "org.xsched-ops.test": "1"})
    try:
        target = ContainerTarget.open(name)
        try:
            target.copy_in(stage, "/opt/hA")
            for command in (["mkdir", "-p", "/opt/hA/loop", "/opt/hA/directory/libfoo.so"],
                            ["ln", "-s", "libfoo.so", "/opt/hA/loop/libfoo.so"]):
                assert target.exec(command, env={"PATH": "/usr/bin:/bin"}).exit_code == 0
            labels = [*damaged, "loop", "directory"]
            result = target.exec(["sh", "-c", SANDBOX_SCRIPT, "sh", *labels], env={"PATH": "/usr/bin:/bin"},
                                 timeout=120)
            real: dict[str, tuple[int, str]] = {}
            lines = (result.stdout + result.stderr).splitlines()
            current, said = "", []
            for line in lines:
                if line.startswith("@@@rc "):
                    real[current] = (int(line[6:]), " ".join(said).strip())
                elif line.startswith("@@@ "):
                    current, said = line[4:], []
                else:
                    said.append(line)
        finally:
            target.close()
        assert set(real) == set(labels), result.stdout
        for label in labels:
            capsys.readouterr()
            code = invoke(["ldd", "--container", name, "--json", "--env", f"LD_LIBRARY_PATH=/opt/hA/{label}",
                           "/opt/hA/prog"])
            report = json.loads(capsys.readouterr().out)["reports"][0]
            real_code, real_text = real[label]
            assert code == 1 and not report["would_start"], label
            if real_code == 135:  # the shell's 128 + SIGBUS
                assert report["fatal_error"].startswith("killed by SIGBUS"), (label, report["fatal_error"])
            else:
                assert real_code == 127 and real_text == f"/opt/hA/prog: {report['fatal_error']}", (label, real_text)
    finally:
        container.remove(force=True)
        client.close()


def _as_nobody() -> list[str] | None:
    """The argv prefix that runs a command as an unprivileged user (root reads every file)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if setpriv else None


def test_an_unreadable_file_is_passed_over_as_the_real_loader_does(built: dict[str, Path]) -> None:
    """EACCES: the loader goes on searching (unlike ELOOP); both run as an unprivileged user."""
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip("needs setpriv to drop root")
    shared = Path(tempfile.mkdtemp(prefix="hA-unreadable-"))  # pytest's own folders are root-only
    try:
        shared.chmod(0o755)
        for label in ("locked", "good"):
            (shared / label).mkdir(mode=0o755)
            shutil.copy(built["good"], shared / label / "libfoo.so")
        (shared / "locked" / "libfoo.so").chmod(0)
        shutil.copy(built["program"], shared / "prog")
        (shared / "prog").chmod(0o755)
        ldd = [str(Path(sys.executable).with_name("xsched-ops")), "ldd", "--local", "--json"]
        for library_path, starts in ((f"{shared}/locked", False), (f"{shared}/locked:{shared}/good", True)):
            env = {**BASE_ENV, "LD_LIBRARY_PATH": library_path}
            code, stderr = _real([*prefix, str(shared / "prog")], env)
            modelled = subprocess.run([*prefix, *ldd, "--env", f"LD_LIBRARY_PATH={library_path}", str(shared / "prog")],
                                      env={**env, "HOME": "/tmp"}, capture_output=True, text=True, timeout=120)
            report = json.loads(modelled.stdout)["reports"][0]
            assert (code == 0) == starts == report["would_start"], (stderr, modelled.stderr)
            tried = (next(o for o in report["objects"] if o["requested_name"] == "libfoo.so")["search"] if starts
                     else report["not_found"][0]["tried"])
            assert tried[0]["outcome"] == "skipped: cannot open (Permission denied)"
            if not starts:
                assert stderr == f"{shared}/prog: {report['fatal_error']}"
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_damaged_file_given_to_ldd_gets_the_loaders_verdict(built: dict[str, Path],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The file named on the command line, as ``ld.so FILE`` judges it (not "(starts)")."""
    data = built["good"].read_bytes()
    cases = {"cut64": data[:64], "cut600": data[:600], "sigbus": data[:4096],
             "big": HEADER_DAMAGE["other-byte-order"][0](data), "relocatable": HEADER_DAMAGE["relocatable"][0](data)}
    for label, content in cases.items():
        path = built["root"] / f"given-{label}.so"
        path.write_bytes(content)
        code, stderr = _real([REAL_LOADER, str(path)], BASE_ENV)
        clear_cache()
        try:
            report = analyze(HostFS(), str(path), BASE_ENV)
        except ElfError as err:  # a file the model cannot parse either: refused, in the loader's words
            assert code == 127 and stderr.endswith(err.message.removeprefix(f"{path}: ")), (label, stderr)
            clear_cache()
            assert invoke(["ldd", "--local", str(path)]) == ElfError.exit_code
            assert err.message in " ".join(capsys.readouterr().err.split())
            continue
        assert not report.would_start, label
        if code == -7:
            assert report.fatal_error.startswith(f"killed by SIGBUS while loading {path} "), report.fatal_error
        else:
            assert code == 127 and stderr == f"{path}: {report.fatal_error}", label
        clear_cache()
        assert invoke(["ldd", "--local", str(path)]) == 1
        assert "(starts)" not in capsys.readouterr().out


def test_a_needed_path_is_opened_as_given_with_the_loaders_reason(built: dict[str, Path], tmp_path: Path) -> None:
    """A DT_NEEDED entry with a ``/`` is not searched: its file's fault is the message (a loop: Error 40)."""
    folder = tmp_path / "direct"
    library = compile_shared(FOO, folder / "libbar.so")  # no SONAME: DT_NEEDED records the path
    program = compile_program(MAIN, tmp_path / "prog_direct", flags=[str(library)])
    real_copy = library.read_bytes()
    damages: dict[str, Callable[[Path], None]] = {
        "loop": lambda path: os.symlink(path.name, path), "directory": lambda path: path.mkdir(),
        "machine": _write(HEADER_DAMAGE["wrong-machine"][0](real_copy)), "cut": _write(real_copy[:100]),
    }
    if "elf32" in built:
        damages["class"] = _write(built["elf32"].read_bytes())
    for label, make in damages.items():
        library.unlink() if library.is_symlink() or library.is_file() else library.rmdir()
        make(library)
        code, report = _assert_same_verdict(program, BASE_ENV)
        assert code == 127, label
        assert report.fatal_error.startswith(f"error while loading shared libraries: {library}: "), label
