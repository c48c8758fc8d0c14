"""The doctor's findings and report without a target: one finding per cause in `shim-loads`, the judgment
for the simulated backend, the exit codes, and a human report that cuts nothing at 40, 80 and 200
columns or in a pipe, each fix command whole on a line of its own."""

from __future__ import annotations

import io
import posixpath
from types import SimpleNamespace

import pytest
from rich.console import Console

from xsched_ops.cli import invoke
from xsched_ops.cli.doctor import findings_table, lead_line, print_report
from xsched_ops.doctor import checks_loader, loader_explain, shim_loads
from xsched_ops.doctor.finding_data import MissingLibraryData
from xsched_ops.doctor.findings import Finding, fail, info, ok, warn
from xsched_ops.doctor.summary import EXIT_CHECK_CRASHED, EXIT_FAILURES, EXIT_OK, judge, summarize
from xsched_ops.loader import Edge, LoadedObject, LoadReport
from xsched_ops.loader.model import (
    NotFound,
    ProviderCandidate,
    SearchStep,
    UnresolvedSymbol,
    VersionProblem,
)

PREFIX_LIB = "/data/dockercode/xsched-build/output/lib"
SHIM = f"{PREFIX_LIB}/libshimhip.so"
HAL = f"{PREFIX_LIB}/libhalhip.so"
STALE_HAL = "/opt/legacy/xsched/lib/libhalhip.so"
OTHER_HAL = "/opt/xsched-1.0/lib/libhalhip.so"
TYPEINFO = "_ZTIN6xsched3hip10HipCommandE"
# The seed's undefined symbols in the loader model's order (the typeinfo is not first).
HIPCOMMAND = [
    ("_ZN6xsched3hip10HipCommandD0Ev", "xsched::hip::HipCommand::~HipCommand()", "lazy"),
    ("_ZN6xsched3hip10HipCommand11SynchronizeEv", "xsched::hip::HipCommand::Synchronize()", "startup"),
    ("_ZN6xsched3hip10HipCommandD2Ev", "xsched::hip::HipCommand::~HipCommand()", "lazy"),
    (TYPEINFO, "typeinfo for xsched::hip::HipCommand", "startup"),
    ("_ZN6xsched3hip10HipCommand6LaunchEv", "xsched::hip::HipCommand::Launch()", "lazy"),
    ("_ZTVN6xsched3hip10HipCommandE", "vtable for xsched::hip::HipCommand", "startup"),
]
FIX_COMMANDS = [f"export LD_LIBRARY_PATH={PREFIX_LIB}", f"export LD_PRELOAD={SHIM}",
                "export XSCHED_HIP_LIB=/lib/x86_64-linux-gnu/libamdhip64.so.5"]


def unresolved(symbol: str, demangled: str, when: str, loaded: str | None = STALE_HAL, expected: str | None = HAL,
               version: str | None = None) -> UnresolvedSymbol:
    return UnresolvedSymbol(
        symbol=symbol, demangled=demangled, needed_by=SHIM, version=version,
        version_file="libhalhip.so" if version else None, when=when,
        loaded_provider=ProviderCandidate(loaded, "found via LD_LIBRARY_PATH entry 1") if loaded else None,
        expected_provider=ProviderCandidate(expected, "found via LD_LIBRARY_PATH entry 2") if expected else None,
        message=f"symbol lookup error: {SHIM}: undefined symbol: {symbol}")


def _object(position: int, path: str, kind: str, reason: str, needed: tuple[str, ...] = (),
            soname: str | None = None, runpath: tuple[str, ...] | None = None) -> LoadedObject:
    return LoadedObject(position=position, path=path, real_path=path, requested_name=path, needed_by=None,
                        kind=kind, reason=reason, soname=soname, needed=needed, rpath=None, runpath=runpath, search=())


def load_report(*, symbols=(), versions=(), missing=(), hal: str | None = STALE_HAL,
                hal_reason: str = "found via LD_LIBRARY_PATH entry 1") -> LoadReport:
    """A load report as the model makes it: python3, the preloaded shim, and its libhalhip.so at ``hal``."""
    objects = [_object(0, "/usr/bin/python3", "executable", "the program"),
               _object(1, SHIM, "preload", "LD_PRELOAD (path given)", ("libhalhip.so", "libpreempt.so"),
                       "libshimhip.so", (PREFIX_LIB,))]
    edges = [Edge("/usr/bin/python3", SHIM, SHIM, "LD_PRELOAD: LD_PRELOAD (path given)", False)]
    if hal is not None:
        objects.append(_object(2, hal, "needed", hal_reason, (), "libhalhip.so", (PREFIX_LIB,)))
        edges.append(Edge(SHIM, "libhalhip.so", hal, hal_reason, False))
    return LoadReport(
        glibc_model="2.36", executable="/usr/bin/python3", cwd="/", ld_library_path=None, ld_preload=SHIM,
        ld_so_preload=(), ld_so_cache="new", objects=tuple(objects), edges=tuple(edges), not_found=tuple(missing),
        failed_preloads=(), unresolved_symbols=tuple(symbols), version_problems=tuple(versions), warnings=(),
        symbols_checked=True, fatal_error=None, would_start=False)


def run_shim_loads(monkeypatch: pytest.MonkeyPatch, *, symbols=(), versions=(), missing=(),
                   files=(SHIM, HAL), hal: str | None = STALE_HAL, definers=None,
                   hal_reason: str = "found via LD_LIBRARY_PATH entry 1") -> list[Finding]:
    """check_shim_loads over a made-up load report (the loader model itself is tested elsewhere)."""
    report = load_report(symbols=symbols, versions=versions, missing=missing, hal=hal, hal_reason=hal_reason)
    install = SimpleNamespace(shim_path=SHIM, lib_dir=PREFIX_LIB, platform=SimpleNamespace(
        shim="libshimhip.so", hal="libhalhip.so", runtime_search_dirs=["/opt/rocm/lib"]))
    context = SimpleNamespace(install=install, fs=SimpleNamespace(isfile=lambda path: path in files,
                                                                  realpath=lambda path: path))
    monkeypatch.setattr(checks_loader, "environment_under_xsched", lambda context: {})
    monkeypatch.setattr(checks_loader, "model", lambda context, env: report)
    monkeypatch.setattr(checks_loader, "provider_folders", lambda context, env: [PREFIX_LIB])
    monkeypatch.setattr(checks_loader, "_fix_commands", lambda context: list(FIX_COMMANDS))
    monkeypatch.setattr(shim_loads, "find_definers", lambda *args, **kwargs: list(definers or []))
    monkeypatch.setattr(loader_explain, "_soname", lambda fs, path: posixpath.basename(path))
    monkeypatch.setattr("xsched_ops.elf.reader.read_elf", lambda fs, path: SimpleNamespace(
        version_definitions=[SimpleNamespace(name="XSCHED_1.2")]))
    return checks_loader.check_shim_loads(context)  # type: ignore[arg-type]


def test_the_seeds_undefined_symbols_are_one_finding_typeinfo_and_vtable_first(monkeypatch) -> None:
    findings = run_shim_loads(monkeypatch, symbols=[unresolved(*entry) for entry in HIPCOMMAND])
    assert len(findings) == 1
    finding = findings[0]
    assert finding.severity == "fail" and finding.id == "shim-loads"
    data = finding.data
    # The keys the sandbox scenarios match on, with the most telling symbol first.
    assert data["symbol"] == TYPEINFO and data["demangled"] == "typeinfo for xsched::hip::HipCommand"
    assert (data["needed_by"], data["loaded_provider"], data["expected_provider"]) == (SHIM, STALE_HAL, HAL)
    assert data["when"] == "startup"
    # JSON keeps every symbol, mangled and demangled.
    listed = [entry["symbol"] for entry in data["symbols"]]
    assert sorted(listed) == sorted(symbol for symbol, _, _ in HIPCOMMAND)
    assert listed[:2] == [TYPEINFO, "_ZTVN6xsched3hip10HipCommandE"]
    assert all(entry["demangled"] for entry in data["symbols"])
    # The human detail lists each symbol once, demangled and mangled, typeinfo first.
    lines = finding.detail.splitlines()
    assert lines[0].startswith(f"the loader picked {STALE_HAL}") and HAL in lines[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("undefined in libshimhip.so"))
    listed_lines = [line.strip() for line in lines[header + 1:]]
    assert listed_lines[0] == f"typeinfo for xsched::hip::HipCommand ({TYPEINFO})"
    assert listed_lines[1].startswith("vtable for xsched::hip::HipCommand")
    assert len(listed_lines) == len(HIPCOMMAND)
    assert "6 undefined symbols" in finding.title and "typeinfo for xsched::hip::HipCommand" in finding.title
    assert finding.commands == FIX_COMMANDS


def test_symbols_of_another_provider_are_another_finding(monkeypatch) -> None:
    symbols = [unresolved(*entry) for entry in HIPCOMMAND[:3]]
    symbols.append(unresolved("preempt_init", "preempt_init", "startup", loaded=None,
                              expected=f"{PREFIX_LIB}/libpreempt.so"))
    findings = run_shim_loads(monkeypatch, symbols=symbols)
    assert len(findings) == 2
    underlinked = next(f for f in findings if f.data["loaded_provider"] is None)
    assert underlinked.data["symbol"] == "preempt_init" and "underlinked" in underlinked.detail
    assert "undefined symbol preempt_init" in underlinked.title


def test_a_version_problem_takes_in_the_undefined_symbols_of_the_same_stale_copy(monkeypatch) -> None:
    problem = VersionProblem(needed_by=SHIM, provider=OTHER_HAL, file="libhalhip.so", version="XSCHED_1.2",
                             severity="error",
                             message=f"{OTHER_HAL}: version `XSCHED_1.2' not found (required by {SHIM})")
    symbols = [unresolved(*entry, loaded=OTHER_HAL, version="XSCHED_1.2") for entry in HIPCOMMAND]
    findings = run_shim_loads(monkeypatch, symbols=symbols, versions=[problem], hal=OTHER_HAL)
    assert len(findings) == 1
    data = findings[0].data
    assert (data["version"], data["needed_by"], data["loaded_provider"], data["expected_provider"]) == \
        ("XSCHED_1.2", SHIM, OTHER_HAL, HAL)
    assert data["symbol"] == TYPEINFO and len(data["symbols"]) == len(HIPCOMMAND)
    assert "XSCHED_1.2" in findings[0].title and problem.message in findings[0].detail


def test_missing_libraries_of_one_object_are_one_finding(monkeypatch) -> None:
    tried = (SearchStep(f"{PREFIX_LIB}/libhalhip.so", "RUNPATH of libshimhip.so", "absent"),)
    missing = [NotFound(name, SHIM, "cannot open shared object file: No such file or directory", tried)
               for name in ("libhalhip.so", "libpreempt.so")]
    # With the HAL missing nothing defines HipCommand: the symbols are the missing library's, one cause.
    symbols = [unresolved(*entry, loaded=None, expected=None) for entry in HIPCOMMAND]
    findings = run_shim_loads(monkeypatch, missing=missing, symbols=symbols, files=(SHIM,), hal=None)
    assert len(findings) == 1
    data = findings[0].data
    assert data["needed"] == "libhalhip.so" and data["needed_libraries"] == ["libhalhip.so", "libpreempt.so"]
    assert data["needed_by"] == SHIM and data["expected_provider"] is None
    assert "libhalhip.so, libpreempt.so, needed by libshimhip.so, are not found" == findings[0].title
    assert data["symbol"] == TYPEINFO and len(data["symbols"]) == len(HIPCOMMAND)
    assert "while it is missing" in findings[0].detail and "underlinked" not in findings[0].detail


@pytest.mark.parametrize("reason", ["ld.so.cache", "found via default directory", "RUNPATH of libshimhip.so",
                                    "RPATH of python3", "LD_PRELOAD (path given)"])
def test_the_loaded_provider_comes_from_the_models_resolution_whatever_step_found_it(monkeypatch, reason) -> None:
    """The model names no loaded provider when no other copy on the search path defines the symbols (the
    install's copy is off the path); the doctor still names the file the loader took, and why."""
    symbols = [unresolved(*entry, loaded=None, expected=None) for entry in HIPCOMMAND]
    findings = run_shim_loads(monkeypatch, symbols=symbols, definers=[HAL], hal_reason=reason)
    assert len(findings) == 1
    data = findings[0].data
    assert (data.loaded_provider, data.loaded_provider_reason, data.expected_provider) == (STALE_HAL, reason, HAL)
    assert "underlinked" not in findings[0].detail
    assert findings[0].detail.startswith(f"the loader picked {STALE_HAL} ({reason}), which does not define them")
    assert "not on the search path of libshimhip.so" in findings[0].detail


def test_a_name_reused_by_soname_says_so() -> None:
    stale = "/opt/xsched-1.0/lib/libhalhip.so.1.0"
    objects = (_object(0, "/usr/bin/python3", "executable", "the program"),
               _object(1, SHIM, "preload", "LD_PRELOAD (path given)", ("libhalhip.so",), "libshimhip.so"),
               _object(2, stale, "preload", "LD_PRELOAD (path given)", (), "libhalhip.so"))
    edges = (Edge("/usr/bin/python3", SHIM, SHIM, "LD_PRELOAD: LD_PRELOAD (path given)", False),
             Edge("/usr/bin/python3", stale, stale, "LD_PRELOAD: LD_PRELOAD (path given)", False),
             Edge(SHIM, "libhalhip.so", stale, "already loaded (LD_PRELOAD (path given))", True))
    report = load_report()
    report = LoadReport(**{**report.__dict__, "objects": objects, "edges": edges})
    reached = loader_explain.reached(report, SHIM, "libhalhip.so")
    assert reached is not None and reached.path == stale
    assert reached.reason == f"already loaded as {stale} (LD_PRELOAD (path given)), whose SONAME is libhalhip.so"


def test_xsched_libraries_from_two_prefixes_are_named_in_the_finding(monkeypatch) -> None:
    findings = run_shim_loads(monkeypatch, symbols=[unresolved(*entry) for entry in HIPCOMMAND])
    data = findings[0].data
    assert data.mixed_builds
    by_library = {entry.library: entry for entry in data.xsched_libraries}
    assert by_library["libshimhip.so"].path == SHIM and by_library["libshimhip.so"].built_for == []
    # The stale copy was built for the install's prefix (its RUNPATH) but lies in another folder.
    assert by_library["libhalhip.so"].path == STALE_HAL and by_library["libhalhip.so"].built_for == [PREFIX_LIB]
    detail = findings[0].detail
    assert "come from different builds or prefixes" in detail
    assert f"  libhalhip.so: {STALE_HAL} (found via LD_LIBRARY_PATH entry 1); its RUNPATH names {PREFIX_LIB}" in detail
    # JSON keeps them whole.
    dumped = findings[0].model_dump()["data"]["xsched_libraries"]
    assert [entry["path"] for entry in dumped] == [SHIM, STALE_HAL]


def test_typed_data_keeps_the_json_shape_and_reads_by_key() -> None:
    finding = fail("gpu", "gpu", "no GPU", path="/dev/kfd")
    assert finding.model_dump()["data"] == {"path": "/dev/kfd"} and finding.data["path"] == "/dev/kfd"
    missing = MissingLibraryData(needed="libhalhip.so", needed_by=SHIM)
    assert set(missing.as_dict()) == {"needed", "needed_by"}  # kinds carry only the keys their maker set


def gpu_missing() -> Finding:
    return fail("gpu", "gpu", "no GPU visible: /dev/kfd, /dev/dri missing in the target",
                "HIP (ROCm) needs /dev/kfd, /dev/dri inside the container",
                "recreate the container with `docker run --device=/dev/kfd --device=/dev/dri --group-add video ...`",
                ["docker run --device=/dev/kfd --device=/dev/dri --group-add video ..."], path="/dev/kfd")


def test_the_simulated_backend_judges_a_missing_gpu_a_warning() -> None:
    findings = [ok("engine", "target", "engine answers"), gpu_missing(), info("xserver", "xsched", "not running")]
    assert summarize(judge(findings, "torch"))["exit_code"] == EXIT_FAILURES
    judged = judge(findings, "sim")
    gpu = next(f for f in judged if f.id == "gpu")
    assert gpu.severity == "warn" and gpu.data["severity_for_gpu_backends"] == "fail"
    assert gpu.data["path"] == "/dev/kfd" and "needs no GPU" in gpu.detail
    summary = summarize(judged, backend="sim")
    assert summary["exit_code"] == EXIT_OK and summary["warnings"] == ["gpu"] and summary["backend"] == "sim"
    assert summarize(judged, strict=True, backend="sim")["exit_code"] == EXIT_FAILURES
    assert findings[1].severity == "fail"  # the checks' own findings are left as they were


def test_exit_codes_and_counts() -> None:
    crashed = Finding(id="settings", area="xsched", severity="crash", title="the check crashed")
    assert summarize([ok("engine", "target", "fine"), crashed])["exit_code"] == EXIT_CHECK_CRASHED
    assert summarize([gpu_missing(), crashed])["exit_code"] == EXIT_FAILURES
    assert summarize([ok("engine", "target", "fine"), warn("torch", "python", "no torch")])["exit_code"] == EXIT_OK
    summary = summarize([gpu_missing(), ok("engine", "target", "fine"), info("gpu-runtime.rocminfo", "gpu", "x")])
    assert summary["checks"] == 3 and summary["passed"] == 2 and summary["failed"] == ["gpu"]
    assert summary["findings"] == {"fail": 1, "crash": 0, "warn": 0, "info": 1, "ok": 1}
    assert summary["line"] == "2/3 checks passed; failing: gpu"


def seed_findings() -> list[Finding]:
    symbols = [{"symbol": s, "demangled": d, "version": None, "when": w, "loader_message": ""}
               for s, d, w in HIPCOMMAND]
    detail = (f"the loader picked {STALE_HAL} (found via LD_LIBRARY_PATH entry 1), which does not define them; "
              f"{HAL} does (found via LD_LIBRARY_PATH entry 2)\nundefined in libshimhip.so (6 symbols):\n"
              + "\n".join(f"  {d} ({s})" for s, d, _ in HIPCOMMAND))
    fix_text = "run with the environment `xsched-ops env` computes (doctor --fix stores it for xsched-ops runs)"
    return [
        fail("shim-loads", "loader", "libshimhip.so: 6 undefined symbols (typeinfo for xsched::hip::HipCommand "
             "and 5 more)", detail, fix_text, FIX_COMMANDS, symbol=TYPEINFO, symbols=symbols),
        fail("duplicates", "loader", f"stale libhalhip.so at {STALE_HAL} shadows {HAL}",
             f"the loader picks {STALE_HAL} (found via LD_LIBRARY_PATH entry 1)",
             f"put {PREFIX_LIB} first on LD_LIBRARY_PATH (doctor --fix)", FIX_COMMANDS),
        ok("ground-truth", "loader", "model and real loader agree: python3 fails with the shim not mapped"),
        warn("preload", "loader", "LD_PRELOAD names /data/dockercode/xsched-build/output/lib/libshim_hip.so, "
             "which does not exist", fix="remove it", commands=["unset LD_PRELOAD"]),
        gpu_missing(),
        ok("engine", "target", "engine at unix:///var/run/docker.sock answers"),
        info("xserver", "xsched", "xserver not running; port 50000 is free"),
    ]


def rendered(console: Console, findings: list[Finding], verbose: bool = False, backend: str | None = None) -> str:
    summary = summarize(findings, backend=backend)
    print_report(console, findings, summary, "xsched-ops doctor: xo-seed (the target's configured environment)",
                 verbose, backend)
    return console.file.getvalue()  # type: ignore[attr-defined]


def assert_whole(text: str, findings: list[Finding], width: int) -> None:
    lines = text.splitlines()
    assert "…" not in text
    for finding in findings:
        if finding.severity in ("ok", "info"):
            continue
        for command in finding.commands:
            assert any(line.strip() == command for line in lines), command
    words = text.split()
    for path in (SHIM, HAL, STALE_HAL, PREFIX_LIB, "/data/dockercode/xsched-build/output/lib/libshim_hip.so"):
        assert path in text, path  # whole: a line break would put a newline and an indent inside
    for symbol, demangled, _ in HIPCOMMAND:
        assert f"({symbol})" in words and demangled.split()[-1] in words
    # A line is longer than the console only where one word alone (a path, a command) is.
    for line in lines:
        if len(line) > width:
            assert line.strip() in {*FIX_COMMANDS, gpu_missing().commands[0]} or len(line.split()) <= 2 \
                or "`" in line, line


@pytest.mark.parametrize("width", [40, 80, 200])
def test_report_cuts_nothing_at_any_width(width: int) -> None:
    findings = seed_findings()
    console = Console(width=width, file=io.StringIO(), color_system=None)
    text = rendered(console, findings)
    assert_whole(text, findings, width)
    lines = text.splitlines()
    lead = next(line for line in lines if line.startswith(("BROKEN", "OK")))
    assert lead.startswith("BROKEN: the shim does not load")
    # One block per finding that is not ok, failures first; the ok checks only with --verbose.
    heads = [line for line in lines if line[:1].isupper() and ":" in line and not line.startswith(("BROKEN",))]
    assert [head.split(":")[0] for head in heads] == ["FAIL shim-loads", "FAIL duplicates", "FAIL gpu",
                                                      "WARN preload"]
    assert "engine at unix" not in text
    # The duplicates block has the same commands as shim-loads: they are printed once, then pointed at.
    assert sum(line.strip() == FIX_COMMANDS[0] for line in lines) == 1
    assert "(the same commands as shim-loads above)" in " ".join(text.split())
    assert " ".join(text.split()).endswith("4/7 checks passed (1 with warnings: preload); failing: shim-loads, "
                                           "duplicates, gpu; 4 findings shown, 3 ok or info hidden (--verbose lists "
                                           "them)")


def test_report_through_a_pipe_cuts_nothing(monkeypatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    findings = seed_findings()
    console = Console(file=io.StringIO())  # not a terminal: rich's default width, no colours
    assert not console.is_terminal
    text = rendered(console, findings)
    assert "\x1b[" not in text
    assert_whole(text, findings, console.width)


def test_verbose_lists_the_ok_checks_and_the_summary_counts_what_is_shown() -> None:
    findings = seed_findings()
    console = Console(width=80, file=io.StringIO(), color_system=None)
    text = rendered(console, findings, verbose=True)
    assert "ok engine: engine at unix:///var/run/docker.sock answers" in text
    assert "info xserver:" in text
    assert "7 findings shown" in text
    terse = rendered(Console(width=80, file=io.StringIO(), color_system=None), findings)
    assert "4 findings shown, 3 ok or info hidden (--verbose lists them)" in " ".join(terse.split())


def test_lead_line_for_the_simulated_backend() -> None:
    judged = judge([gpu_missing(), ok("engine", "target", "fine")], "sim")
    summary = summarize(judged, backend="sim")
    assert lead_line(judged, summary, "sim") == "OK for --backend sim: nothing fails; warnings from gpu"
    text = rendered(Console(width=80, file=io.StringIO(), color_system=None), judged, backend="sim")
    assert "WARN gpu: no GPU visible" in text and "(judged for --backend sim)" in " ".join(text.split())


@pytest.mark.parametrize("width", [40, 80])
def test_findings_table_for_fix_and_rerun_cuts_nothing(width: int) -> None:
    findings = seed_findings()
    console = Console(width=width, file=io.StringIO(), color_system=None, soft_wrap=True)
    console.print(findings_table(findings, "doctor: before the fix"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert_whole(text, findings, width)


def test_an_unknown_backend_is_a_usage_error(capfd) -> None:
    assert invoke(["doctor", "--container", "nothing-here", "--backend", "gpu"]) == 2
    assert "unknown backend 'gpu'" in capfd.readouterr().err


def test_help_documents_every_exit_code(capfd, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert invoke(["doctor", "--help"]) == 0
    out = capfd.readouterr().out
    for code in ("0:", "0 after --fix", "1:", "2:", "3:", "10 and up", "130:"):
        assert code in out, code
    assert "--backend" in out and "--verbose" in out
