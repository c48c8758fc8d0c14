"""Bad input from issue 15 ("Why"): each is one line on stderr with the documented exit code, never a
traceback, and what was accepted but wrong is refused. The CLI runs in-process (``cli.invoke``).

``run_cli``, ``assert_refused`` and ``DOCUMENTED_EXIT_CODES`` are shared with the fuzz tests.
"""

from __future__ import annotations

import io
import json
import re
import struct
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_results_builders import write_run, write_trial

from xsched_ops.cli import invoke
from xsched_ops.errors import (
    ContainerNotFoundError,
    ElfError,
    InvalidRunError,
    ProfileError,
    ResultsError,
    SandboxError,
    UsageError,
)
from xsched_ops.profiles import MAX_BATCH, MAX_RATE, apply_overrides, find_profile, load_profile

README = Path(__file__).resolve().parent.parent / "README.md"


def _documented_exit_codes() -> set[int]:
    """The exit codes of the README's error table (plus 0, and 130 for Ctrl-C)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| exit code | meaning |")
    codes: set[int] = set()
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        codes.add(int(line.split("|")[1]))
    return codes | {0, 130}


DOCUMENTED_EXIT_CODES = _documented_exit_codes()


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(argv: list[str]) -> CliResult:
    """The command line in this process, its stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = invoke(argv)
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_clean(result: CliResult, allowed: set[int]) -> None:
    """An exit code from the documented table and ``allowed``; no traceback; an error is one line."""
    assert allowed <= DOCUMENTED_EXIT_CODES, f"{allowed - DOCUMENTED_EXIT_CODES} are not in the README's table"
    assert result.code in allowed, (result.code, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    if result.code != 0:
        assert len(result.err_lines()) == 1, result.err


def assert_refused(result: CliResult, code: int, *fragments: str) -> str:
    assert_clean(result, {code})
    line = result.err_lines()[0]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def shipped_profile_raw(name: str = "intensive") -> dict:
    import tomllib

    return tomllib.loads(find_profile(name).read_text(encoding="utf-8"))


def toml_key(part: str) -> str:
    return part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)


def toml_value(value) -> str:
    """A TOML literal for a Python value (what tomllib gives back, plus inf/nan)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def profile_toml(raw: dict, literals: dict[str, str] | None = None) -> str:
    """``raw`` as TOML text of dotted top-level keys; ``literals``: dotted key -> TOML text set as is."""
    lines: list[str] = []

    def walk(node: dict, prefix: list[str]) -> None:
        for key, value in node.items():
            path = [*prefix, toml_key(str(key))]
            if isinstance(value, dict) and value:
                walk(value, path)
            else:
                lines.append(f"{'.'.join(path)} = {toml_value(value)}")

    overridden = dict(literals or {})
    walk(raw, [])
    kept = [line for line in lines if line.split(" = ", 1)[0] not in overridden]
    kept += [f"{key} = {text}" for key, text in overridden.items()]
    return "\n".join(kept) + "\n"


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("XSCHED_OPS_DEBUG", raising=False)


# --------------------------------------------------------------------------- profiles


def test_profile_file_not_utf8_names_file_and_offset(tmp_path):
    text = find_profile("intensive").read_text(encoding="utf-8")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(text.replace("High-priority", "Hoh\u00e9-priority").encode("latin-1"))
    offset = latin1.read_bytes().index(b"\xe9")
    line = assert_refused(run_cli(["profiles", "show", str(latin1)]), ProfileError.exit_code,
                          str(latin1), "UTF-8", f"offset {offset}")
    assert "0xe9" in line
    garbage = tmp_path / "random.toml"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert_refused(run_cli(["profiles", "show", str(garbage)]), ProfileError.exit_code, str(garbage), "offset")
    # run loads the profile before it touches any target
    assert_refused(run_cli(["run", str(latin1), "--local", "--backend", "sim"]), ProfileError.exit_code, "UTF-8")


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("low.batch", "99999999999999999", "1 <= low.batch <= 65536"),
    ("low.batch", "1e17", "1 <= low.batch <= 65536"),
    ("high.rate", "inf", "0 < high.rate <= 10000"),
    ("high.rate", "nan", "0 < high.rate <= 10000"),
    ("high.rate", "1e308", "0 < high.rate <= 10000"),
    ("duration_s", "1e300", "0 < duration_s <= 86400"),
    ("duration_s", "-inf", "0 < duration_s <= 86400"),
    ("high.xsched.priority", "256", "-256 <= high.xsched.priority <= 255"),
    ("low.xsched.priority", "-257", "-256 <= low.xsched.priority <= 255"),
    ("high.xsched.level", "4", "1 <= high.xsched.level <= 3"),
    ("low.xsched.threshold", "65537", "1 <= low.xsched.threshold <= 65536"),
    ("high.image_size", "100000", "8 <= high.image_size <= 4096"),
    ("warmup_s", "1e9", "0 <= warmup_s <= 3600"),
    ("sla_ms", "0", "0 < sla_ms <= 600000"),
])
def test_out_of_range_values_are_refused_at_load_time(tmp_path, key, value, allowed):
    started = time.monotonic()
    import tomllib

    shown = repr(tomllib.loads(f"v = {value}")["v"])  # the value as read: 1e17 -> 1e+17
    line = assert_refused(run_cli(["profiles", "show", "intensive", f"--set={key}={value}"]),
                          ProfileError.exit_code, f"{key} = {shown}", allowed)
    assert "allowed" in line
    # the same value in a profile file: refused when the file is loaded, naming the file
    path = tmp_path / "p.toml"
    path.write_text(profile_toml(shipped_profile_raw(), {key: value}), encoding="utf-8")
    assert_refused(run_cli(["profiles", "show", str(path)]), ProfileError.exit_code, str(path), key, allowed)
    assert_refused(run_cli(["run", str(path), "--local", "--backend", "sim"]), ProfileError.exit_code, key)
    assert time.monotonic() - started < 30


def test_top_level_out_of_range_in_a_file(tmp_path):
    text = find_profile("intensive").read_text(encoding="utf-8")
    for original, bad, key in [("duration_s = 180", "duration_s = inf", "duration_s"),
                               ("duration_s = 180", "duration_s = 1e300", "duration_s"),
                               ("sla_ms = 100", "sla_ms = nan", "sla_ms")]:
        path = tmp_path / "top.toml"
        path.write_text(text.replace(original, bad), encoding="utf-8")
        assert_refused(run_cli(["profiles", "show", str(path)]), ProfileError.exit_code, str(path), key, "allowed")


def test_in_range_edges_are_accepted():
    profile = load_profile("intensive", [f"low.batch={MAX_BATCH}", f"high.rate={MAX_RATE:g}", "duration_s=60",
                                         "high.xsched.priority=-256", "low.xsched.priority=255",
                                         "low.xsched.threshold=65536", "low.xsched.batch_size=65536"])
    assert profile.low.batch == MAX_BATCH and profile.high.rate == MAX_RATE
    with pytest.raises(ProfileError, match="requests"):  # 10000 req/s for a day: a trace of 864 million
        load_profile("intensive", [f"high.rate={MAX_RATE:g}", "duration_s=86400"])


def test_batch_size_above_threshold_names_both():
    line = assert_refused(run_cli(["profiles", "show", "intensive", "--set=low.xsched.batch_size=9"]),
                          ProfileError.exit_code, "batch_size 9", "threshold 4", "allowed")
    assert "low.xsched" in line


@pytest.mark.parametrize("expression", ["low.batch", "=5", "low..batch=3", '"low.batch=3', "low.=1", " =1"])
def test_malformed_set_is_a_usage_error(expression):
    assert_refused(run_cli(["profiles", "show", "intensive", f"--set={expression}"]), UsageError.exit_code, "--set")
    with pytest.raises(ProfileError):  # still a profile problem for code that catches those
        apply_overrides(load_profile("intensive"), [expression])


def test_set_value_cannot_smuggle_a_second_assignment():
    result = run_cli(["profiles", "show", "intensive", "--json", "--set=low.batch=8\nhigh.rate = 5000"])
    assert_refused(result, ProfileError.exit_code, "low.batch")


def test_unknown_key_and_table_stay_profile_errors():
    assert_refused(run_cli(["profiles", "show", "intensive", "--set=low.nope=1"]), ProfileError.exit_code,
                   "low.nope", "valid keys")
    assert_refused(run_cli(["profiles", "show", "intensive", "--set=low=1"]), ProfileError.exit_code, "table")


def test_shipped_profiles_are_within_the_bounds():
    for name in ("original", "intensive"):
        assert run_cli(["profiles", "show", name]).code == 0


# --------------------------------------------------------------------------- ELF


def _small_library() -> Path:
    for candidate in ("/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1",
                      "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6"):
        if Path(candidate).is_file():
            return Path(candidate).resolve()
    pytest.skip("no small x86-64 library on this host")


def test_elf_with_e_phoff_beyond_any_file_is_one_line(tmp_path):
    from xsched_ops.elf import clear_cache, read_elf
    from xsched_ops.target.fs import HostFS

    data = bytearray(_small_library().read_bytes())
    for value in (2 ** 63, 2 ** 64 - 1):
        struct.pack_into("<Q", data, 0x20, value)  # e_phoff
        path = tmp_path / f"phoff-{value:x}.so"
        path.write_bytes(data)
        clear_cache()
        with pytest.raises(ElfError, match="malformed ELF"):
            read_elf(HostFS(), str(path))
        assert_refused(run_cli(["ldd", "--local", str(path)]), ElfError.exit_code, str(path))


# --------------------------------------------------------------------------- run folders


@pytest.fixture
def runs(tmp_path):
    for name in ("run-a", "run-b"):
        run_dir = write_run(tmp_path, name)
        write_trial(run_dir, 0, "baseline")
        write_trial(run_dir, 1, "xsched")
    return tmp_path


def test_a_folder_that_is_not_a_run_is_refused(runs, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("plain")
    (elsewhere / "notes.txt").write_text("hello")
    for argv in (["results", "show", str(elsewhere)], ["compare", str(elsewhere)], ["report", str(elsewhere)],
                 ["results", "show", "/tmp"], ["results", "show", ""]):
        assert_refused(run_cli([*argv, "--results-dir", str(runs)]), ResultsError.exit_code)
    assert not (elsewhere / "report.html").exists()


def test_run_name_with_path_traversal_is_refused(runs):
    depth = len(runs.resolve().parts)
    traversal = "/".join([".."] * depth) + "/etc"
    for name in (traversal, "../run-a/..", "..", "."):
        assert_refused(run_cli(["report", name, "--results-dir", str(runs)]), ResultsError.exit_code)
    assert not Path("/etc/report.html").exists()


def test_newer_or_missing_schema_version_in_run_json_is_refused(runs):
    meta = runs / "run-a" / "run.json"
    raw = json.loads(meta.read_text())
    raw["schema_version"] = 99
    meta.write_text(json.dumps(raw))
    assert_refused(run_cli(["results", "show", "run-a", "--results-dir", str(runs)]), ResultsError.exit_code,
                   "schema version 99")
    del raw["schema_version"]
    meta.write_text(json.dumps(raw))
    assert_refused(run_cli(["compare", "run-a", "--results-dir", str(runs)]), ResultsError.exit_code,
                   "schema_version")


def test_results_list_shows_damaged_runs_with_the_problem(runs):
    (runs / "run-b" / "result.json").write_text("{ cut sh")
    (runs / "run-c" / "trials").mkdir(parents=True)  # trials but no run.json
    result = run_cli(["results", "list", "--results-dir", str(runs), "--json"])
    assert result.code == 0
    listed = {row["run_id"]: row for row in json.loads(result.out)["runs"]}
    assert listed["run-a"]["status"] == "complete" and listed["run-a"]["problem"] is None
    assert listed["run-b"]["status"] == "damaged" and "result.json is not JSON" in listed["run-b"]["problem"]
    assert listed["run-c"]["status"] == "damaged" and "no run.json" in listed["run-c"]["problem"]
    text = run_cli(["results", "list", "--results-dir", str(runs)])
    assert text.code == 0 and "damaged" in text.out and "run-c" in text.out


def test_deleted_or_cut_samples_make_the_trial_invalid(runs):
    events = runs / "run-a" / "trials" / "01-xsched" / "events-high.jsonl"
    lines = events.read_text().splitlines(keepends=True)
    events.write_text("".join(lines[:40] + lines[45:]))  # five samples removed, the end event kept
    assert_refused(run_cli(["compare", "run-a", "--results-dir", str(runs)]), InvalidRunError.exit_code,
                   "samples were lost or removed")
    low = runs / "run-b" / "trials" / "00-baseline" / "events-low.jsonl"
    low.write_bytes(low.read_bytes()[:-20])  # the last line cut in the middle
    assert_refused(run_cli(["compare", "run-b", "--results-dir", str(runs)]), InvalidRunError.exit_code,
                   "middle of a line")


def test_missing_events_file_and_deleted_trial_are_invalid(runs):
    (runs / "run-a" / "trials" / "00-baseline" / "events-high.jsonl").unlink()
    line = assert_refused(run_cli(["compare", "run-a", "--results-dir", str(runs)]), InvalidRunError.exit_code)
    assert "events-high.jsonl is missing" in line or "high" in line
    run_dir = runs / "run-b"
    write_trial(run_dir, 2, "baseline", repeat=1)
    import shutil

    shutil.rmtree(run_dir / "trials" / "01-xsched")
    write_trial(run_dir, 3, "xsched", repeat=1)
    assert_refused(run_cli(["compare", "run-b", "--results-dir", str(runs)]), InvalidRunError.exit_code,
                   "01 missing")


def test_fewer_trials_than_planned_is_invalid(runs):
    run_dir = runs / "run-a"
    (run_dir / "experiment.json").write_text(json.dumps({"modes": ["baseline", "xsched"], "repeat": 2}))
    assert_refused(run_cli(["compare", "run-a", "--results-dir", str(runs)]), InvalidRunError.exit_code,
                   "2 of the 4 trials planned")


def test_report_output_paths(runs, tmp_path_factory):
    base = ["--results-dir", str(runs)]
    folder = tmp_path_factory.mktemp("out")
    result = run_cli(["report", "run-a", *base, "-o", str(folder)])
    assert result.code == 0 and (folder / "report.html").is_file()
    result = run_cli(["report", "run-a", *base, "-o", str(folder / "new") + "/"])
    assert result.code == 0 and (folder / "new" / "report.html").is_file()
    assert_refused(run_cli(["report", "run-a", *base, "-o", ""]), UsageError.exit_code, "--out")
    for unwritable in ("/dev/full", "/proc/version", "/proc/no-such/report.html"):
        assert_refused(run_cli(["report", "run-a", *base, "-o", unwritable]), ResultsError.exit_code, unwritable)
    blocker = folder / "file"
    blocker.write_text("x")
    assert_refused(run_cli(["report", "run-a", *base, "-o", str(blocker / "r.html")]), ResultsError.exit_code)


def test_report_of_two_runs_keeps_the_first_runs_report(runs):
    base = ["--results-dir", str(runs)]
    assert run_cli(["report", "run-a", *base]).code == 0
    own = runs / "run-a" / "report.html"
    before = own.read_bytes()
    result = run_cli(["report", "run-a", "run-b", *base])
    assert result.code == 0
    assert own.read_bytes() == before
    both = runs / "run-a" / "report-run-a-run-b.html"
    assert both.is_file() and str(both) in result.out
    assert run_cli(["report", "run-a", "run-b", *base]).out.strip() == str(both)  # the same runs: same file


# --------------------------------------------------------------------------- sandbox


def test_sandbox_rm_of_an_unknown_name_exits_11(monkeypatch):
    import docker.errors

    from xsched_ops.target import engine

    class Containers:
        def get(self, name):
            raise docker.errors.NotFound(f"No such container: {name}")

    class Client:
        containers = Containers()

        def close(self):
            pass

    monkeypatch.setattr(engine, "connect", lambda *args, **kwargs: Client())
    line = assert_refused(run_cli(["sandbox", "rm", "never-made"]), ContainerNotFoundError.exit_code, "never-made")
    assert "sandbox list" in line
    from xsched_ops.sandbox import remove_sandbox

    with pytest.raises(SandboxError, match="no sandbox named"):  # still a sandbox problem for its callers
        remove_sandbox("never-made")
