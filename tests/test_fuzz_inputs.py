"""Fuzz suite (hypothesis): profile TOML, ``--set`` expressions, ELF headers and run folders.

Every case asserts the exit code from the README's error table, one line on stderr for an error,
and no traceback; a failure shrinks to a small case. The examples per test are tuned so that the
whole module runs in about a minute; ``XSCHED_OPS_FUZZ_SCALE`` multiplies them,
``XSCHED_OPS_FUZZ_EXAMPLES=N`` sets every test to N (bench/fuzz_long.py runs it longer) and
``XSCHED_OPS_FUZZ_COUNTS=FILE`` writes the cases run per category to FILE.
"""

from __future__ import annotations

import collections
import json
import math
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_input import assert_clean, profile_toml, run_cli, shipped_profile_raw, toml_value
from test_results_builders import write_run, write_trial

from xsched_ops.errors import (
    ElfError,
    InvalidRunError,
    ProfileError,
    ResultsError,
    TargetPathError,
    UsageError,
)

SCALE = float(os.environ.get("XSCHED_OPS_FUZZ_SCALE", "1"))
EXAMPLES = int(os.environ.get("XSCHED_OPS_FUZZ_EXAMPLES", "0"))
COUNTS: collections.Counter[str] = collections.Counter()

PROFILE_CODES = {0, ProfileError.exit_code}
SET_CODES = {0, UsageError.exit_code, ProfileError.exit_code}
ELF_CLI_CODES = {0, 1, TargetPathError.exit_code, ElfError.exit_code}  # 1: the program would not start
RESULTS_CODES = {0, InvalidRunError.exit_code, ResultsError.exit_code}


def fuzz_settings(examples: int):
    return settings(max_examples=EXAMPLES or max(1, int(examples * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def _write_counts():
    yield
    target = os.environ.get("XSCHED_OPS_FUZZ_COUNTS")
    if target:
        Path(target).write_text(json.dumps(dict(COUNTS), indent=2, sort_keys=True) + "\n", encoding="utf-8")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("XSCHED_OPS_DEBUG", raising=False)


# --------------------------------------------------------------------------- values

NUMBERS = st.one_of(
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.integers(min_value=-300, max_value=70_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 8, 255, 256, -256, -257, 65536, 65537, 86400, 86401, 10000, 10000.5, 1e17, 1e300,
                     1e308, -1e308, 5e-324, 0.5, -0.0, 2 ** 63 - 1, 99999999999999999]),
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=30))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
TOML_VALUES = st.recursive(
    st.one_of(st.booleans(), NUMBERS, st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10)

PROFILE_KEYS = [
    "name", "description", "duration_s", "warmup_s", "warmup_iterations", "drain_s", "placement", "sla_ms",
    "arrival.process", "arrival.jitter", "arrival.seed", "tiers.good.p99_ms", "tiers.excellent.p99_improvement_pct",
    "xsched.scheduler", "xsched.xserver_policy", "xsched.xserver_port", "high.model", "high.batch", "high.rate",
    "high.image_size", "high.xsched.priority", "high.xsched.level", "high.xsched.threshold",
    "high.xsched.batch_size", "low.batch", "low.rate", "low.xsched.threshold", "low.xsched.batch_size",
    'sim.models."torchvision:resnet50".kernels', 'sim.models."torchvision:resnet50".ms_per_image',
    'sim.models."torchvision:resnet18".fixed_ms', "tiers", "sim", "high", "nope", "high.nope",
]


def _set_path(node: dict, path: list[str], value) -> None:
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _split_dotted(key: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in key:
        if char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _write_profile(text: str | bytes) -> tuple[tempfile.TemporaryDirectory, Path]:
    folder = tempfile.TemporaryDirectory(prefix="fuzz-profile-")
    path = Path(folder.name) / "fuzzed.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    return folder, path


def _assert_profile_output_finite(out: str) -> None:
    data = json.loads(out)["profile"]

    def walk(value) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, float):
            assert math.isfinite(value), data

    walk(data)


# --------------------------------------------------------------------------- profile files


@fuzz_settings(250)
@given(st.data())
def test_fuzz_profile_structure(data):
    """Keys set to anything, deleted, tables replaced by values: 0 or 20, one line, accepted values finite."""
    raw = shipped_profile_raw()
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        key = data.draw(st.one_of(st.sampled_from(PROFILE_KEYS), st.text(min_size=1, max_size=12)), label="key")
        path = _split_dotted(key) if key in PROFILE_KEYS else [key]
        if data.draw(st.booleans(), label="delete"):
            node = raw
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(path[-1], None)
        else:
            _set_path(raw, path, data.draw(TOML_VALUES, label="value"))
    try:
        text = profile_toml(raw)
    except (TypeError, ValueError):
        return
    folder, path = _write_profile(text)
    with folder:
        result = run_cli(["profiles", "show", str(path), "--json"])
    COUNTS["profile_toml_structure"] += 1
    assert_clean(result, PROFILE_CODES)
    if result.code == 0:
        _assert_profile_output_finite(result.out)


@fuzz_settings(250)
@given(st.data())
def test_fuzz_profile_bytes(data):
    """Mutated, truncated, latin-1 and random bytes of a real profile: 0 or 20, one line."""
    original = Path(__file__).resolve().parent.parent.joinpath("profiles", "intensive.toml").read_bytes()
    kind = data.draw(st.sampled_from(["random", "flip", "truncate", "latin1", "insert"]), label="kind")
    if kind == "random":
        blob = data.draw(st.binary(max_size=400), label="bytes")
    elif kind == "truncate":
        blob = original[:data.draw(st.integers(0, len(original)), label="cut")]
    elif kind == "latin1":
        text = original.decode("utf-8")
        position = data.draw(st.integers(0, len(text)), label="at")
        blob = (text[:position] + data.draw(st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0xFF),
                                                    min_size=1, max_size=5), label="latin") + text[position:]
                ).encode("latin-1")
    else:
        blob = bytearray(original)
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            position = data.draw(st.integers(0, len(blob) - 1), label="position")
            byte = data.draw(st.integers(0, 255), label="byte")
            if kind == "flip":
                blob[position] = byte
            else:
                blob.insert(position, byte)
        blob = bytes(blob)
    folder, path = _write_profile(blob)
    with folder:
        result = run_cli(["profiles", "show", str(path), "--json"])
    COUNTS["profile_bytes"] += 1
    assert_clean(result, PROFILE_CODES)
    if result.code == 0:
        _assert_profile_output_finite(result.out)
    if kind == "latin1" and result.code != 0:
        assert str(path) in result.err


# Bounds of the README's profiles paragraph, written out here independently of the code:
# key -> (kind, low, low inclusive, high, high inclusive).
BOUNDS = {
    "duration_s": ("float", 0, False, 86400, True),
    "warmup_s": ("float", 0, True, 3600, True),
    "drain_s": ("float", 0, True, 3600, True),
    "warmup_iterations": ("int", 0, True, 10000, True),
    "sla_ms": ("float", 0, False, 600000, True),
    "tiers.good.p99_ms": ("float", 0, False, 600000, True),
    "arrival.jitter": ("float", 0, True, 1, False),
    "high.rate": ("float", 0, False, 10000, True),
    "high.batch": ("int", 1, True, 65536, True),
    "low.batch": ("int", 1, True, 65536, True),
    "high.image_size": ("int", 8, True, 4096, True),
    "high.xsched.priority": ("int", -256, True, 255, True),
    "low.xsched.level": ("int", 1, True, 3, True),
    "high.xsched.threshold": ("int", 8, True, 65536, True),  # its batch_size is 8
    "low.xsched.batch_size": ("int", 1, True, 4, True),  # its threshold is 4
    "xsched.xserver_port": ("int", 1, True, 65535, True),
    'sim.models."torchvision:resnet50".kernels': ("int", 1, True, 100000, True),
}


def _accepted(key: str, value) -> bool:
    kind, low, low_in, high, high_in = BOUNDS[key]
    if isinstance(value, bool):
        return False
    number = float(value) if isinstance(value, int) and abs(value) < 2 ** 1000 else value
    if not isinstance(number, float) or not math.isfinite(number):
        return False
    if kind == "int" and number != int(number):
        return False
    return (number > low or (low_in and number == low)) and (number < high or (high_in and number == high))


@fuzz_settings(300)
@given(key=st.sampled_from(sorted(BOUNDS)), value=NUMBERS, through=st.sampled_from(["file", "set"]))
def test_fuzz_profile_values_against_the_documented_bounds(key, value, through):
    """A number is accepted exactly when it lies in the documented range; a refusal names key and range."""
    literal = toml_value(value)
    if through == "file":
        folder, path = _write_profile(profile_toml(shipped_profile_raw(), {key: literal}))
        with folder:
            result = run_cli(["profiles", "show", str(path), "--json"])
    else:
        result = run_cli(["profiles", "show", "intensive", "--json", f"--set={key}={literal}"])
    COUNTS["profile_values"] += 1
    assert_clean(result, PROFILE_CODES)
    assert (result.code == 0) == _accepted(key, value), (key, value, result.err)
    if result.code != 0:
        line = result.err_lines()[0]
        assert _split_dotted(key)[-1] in line and ("allowed" in line or "finite" in line), line


# --------------------------------------------------------------------------- --set expressions

SET_KEYS = st.one_of(st.sampled_from(PROFILE_KEYS), st.text(max_size=15),
                     st.sampled_from(["", ".", "..", "low.", ".low", '"', 'sim.models."x', 'sim.models."a.b".kernels',
                                      "low..batch", " low.batch ", "tiers.excellent", "sim.models"]))
SET_VALUES = st.one_of(st.text(max_size=25), NUMBERS.map(toml_value), TOML_VALUES.map(toml_value),
                       st.sampled_from(["", "[", "{", '"', "inf", "-inf", "nan", "1e308", "true", "0x10", "1_000",
                                        "1\nhigh.rate = 5", "[[[[[[[[[[", "'x'"]))


@fuzz_settings(400)
@given(key=SET_KEYS, separator=st.sampled_from(["=", "", "==", " = "]), value=SET_VALUES)
def test_fuzz_set_expressions(key, separator, value):
    """``--set`` as anyone might type it: 0, 2 (malformed expression) or 20 (bad key or value), one line."""
    expression = f"{key}{separator}{value}"
    result = run_cli(["profiles", "show", "intensive", "--json", f"--set={expression}"])
    COUNTS["set_expressions"] += 1
    assert_clean(result, SET_CODES)
    name = expression.partition("=")[0].strip()
    if "=" not in expression or not name:
        assert result.code == UsageError.exit_code, result.err
    if result.code == 0:
        _assert_profile_output_finite(result.out)


@fuzz_settings(150)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=4))
def test_fuzz_set_raw_text(expressions):
    """Arbitrary text, several --set at once (also through run, which loads the profile first)."""
    argv = ["profiles", "show", "intensive", "--json", *(f"--set={text}" for text in expressions)]
    result = run_cli(argv)
    COUNTS["set_expressions"] += 1
    assert_clean(result, SET_CODES)


# --------------------------------------------------------------------------- ELF headers

def _library() -> bytes:
    for candidate in ("/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1",
                      "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6"):
        if Path(candidate).is_file():
            return Path(candidate).resolve().read_bytes()
    pytest.skip("no small x86-64 library on this host")


def _regions(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges worth mutating: the ELF header, the program headers, the dynamic segment."""
    regions = [(0, 64)]
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    regions.append((phoff, phoff + phentsize * phnum))
    for index in range(phnum):
        p_type, _, p_offset, _, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + index * phentsize)
        if p_type == 2:  # PT_DYNAMIC
            regions.append((p_offset, p_offset + p_filesz))
    return regions


HEADER_FIELDS = [(0x04, "B"), (0x05, "B"), (0x10, "H"), (0x12, "H"), (0x20, "Q"), (0x28, "Q"), (0x34, "H"),
                 (0x36, "H"), (0x38, "H"), (0x3A, "H"), (0x3C, "H"), (0x3E, "H")]


def _mutate_elf(data, original: bytes) -> tuple[bytes, str]:
    kind = data.draw(st.sampled_from(["truncate", "field", "bytes", "words"]), label="kind")
    blob = bytearray(original)
    if kind == "truncate":
        return bytes(blob[:data.draw(st.integers(0, len(blob)), label="cut")]), kind
    if kind == "field":
        for _ in range(data.draw(st.integers(1, 3), label="fields")):
            offset, fmt = data.draw(st.sampled_from(HEADER_FIELDS), label="field")
            bits = struct.calcsize(fmt) * 8
            value = data.draw(st.one_of(st.integers(0, 2 ** bits - 1),
                                        st.sampled_from([0, 1, 2 ** (bits - 1), 2 ** bits - 1, len(original)])),
                              label="value")
            struct.pack_into("<" + fmt, blob, offset, value & (2 ** bits - 1))
        return bytes(blob), kind
    regions = _regions(original)
    for _ in range(data.draw(st.integers(1, 12), label="edits")):
        start, end = data.draw(st.sampled_from(regions), label="region")
        width = 1 if kind == "bytes" else data.draw(st.sampled_from([2, 4, 8]), label="width")
        if end - start < width:
            continue
        position = data.draw(st.integers(start, end - width), label="position")
        value = data.draw(st.one_of(st.integers(0, 2 ** (8 * width) - 1),
                                    st.sampled_from([0, 2 ** (8 * width) - 1, 2 ** (8 * width - 1)])), label="value")
        blob[position:position + width] = value.to_bytes(width, "little")
    return bytes(blob), kind


@fuzz_settings(800)
@given(st.data())
def test_fuzz_elf_reader(data):
    """Mutated and truncated copies of a real library: read, or ElfError/TargetPathError; never a crash."""
    from xsched_ops.elf import clear_cache, read_elf
    from xsched_ops.target.fs import HostFS

    original = _library()
    blob, _ = _mutate_elf(data, original)
    with tempfile.TemporaryDirectory(prefix="fuzz-elf-") as folder:
        path = Path(folder) / "libfuzz.so"
        path.write_bytes(blob)
        clear_cache()
        try:
            obj = read_elf(HostFS(), str(path))
            table = obj.symbols()
            _ = (table.references, table.definitions, table.symbols, obj.needed, obj.soname)
        except (ElfError, TargetPathError) as err:
            assert "\n" not in err.one_line()
    COUNTS["elf_reader"] += 1


@fuzz_settings(40)
@given(st.data())
def test_fuzz_elf_through_ldd(data):
    """The same through ``xsched-ops ldd --local``: 0, 1, 14 or 19, one line, no traceback."""
    from xsched_ops.elf import clear_cache

    blob, _ = _mutate_elf(data, _library())
    with tempfile.TemporaryDirectory(prefix="fuzz-elf-") as folder:
        path = Path(folder) / "libfuzz.so"
        path.write_bytes(blob)
        clear_cache()
        result = run_cli(["ldd", "--local", "--json", "--no-symbols", str(path)])
    COUNTS["elf_ldd_cli"] += 1
    assert_clean(result, ELF_CLI_CODES)


# --------------------------------------------------------------------------- run folders

_TEMPLATE: dict[str, Path] = {}


def _template_run() -> Path:
    """One finalized run (baseline and xsched, small) built once and copied for every case."""
    if "run" not in _TEMPLATE:
        from xsched_ops.results import finalize_run

        root = Path(tempfile.mkdtemp(prefix="fuzz-run-template-"))
        run_dir = write_run(root, "run-t")
        write_trial(run_dir, 0, "baseline", duration_s=5.0)
        write_trial(run_dir, 1, "xsched", duration_s=5.0)
        (run_dir / "experiment.json").write_text(json.dumps({"modes": ["baseline", "xsched"], "repeat": 1}))
        finalize_run(run_dir)
        _TEMPLATE["run"] = run_dir
    return _TEMPLATE["run"]


def _files(run_dir: Path) -> list[str]:
    return sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("*") if path.is_file())


def _json_paths(value, prefix=()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:5]):
            paths += _json_paths(item, (*prefix, index))
    return paths


def _mutate_json(data, value):
    paths = _json_paths(value)
    target = data.draw(st.sampled_from(paths[:400]), label="json path")
    replacement = data.draw(JSON_VALUES, label="json value")
    if not target:
        return replacement
    node = value
    for part in target[:-1]:
        node = node[part]
    if isinstance(node, dict) and data.draw(st.booleans(), label="delete key"):
        node.pop(target[-1], None)
    else:
        node[target[-1]] = replacement
    return value


def _mutate_run(data, run_dir: Path) -> list[tuple[str, str, float]]:
    """Apply 1-3 mutations; returns (operation, file, cut fraction) of each."""
    done = []
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        files = _files(run_dir)
        operation = data.draw(st.sampled_from(["delete", "truncate", "json", "jsonl", "bytes", "rmdir"]),
                              label="operation")
        if operation == "rmdir":
            folders = sorted({str(Path(name).parent) for name in files if Path(name).parent != Path(".")})
            if not folders:
                continue
            folder = data.draw(st.sampled_from(folders), label="folder")
            shutil.rmtree(run_dir / folder, ignore_errors=True)
            done.append((operation, folder, 0.0))
            continue
        if not files:
            continue
        name = data.draw(st.sampled_from(files), label="file")
        path = run_dir / name
        blob = path.read_bytes()
        if operation == "delete":
            path.unlink()
            done.append((operation, name, 0.0))
        elif operation == "truncate":
            fraction = data.draw(st.floats(0, 1, exclude_max=True), label="fraction")
            path.write_bytes(blob[:int(len(blob) * fraction)])
            done.append((operation, name, fraction))
        elif operation == "json" and name.endswith(".json"):
            try:
                value = json.loads(blob)
            except ValueError:
                continue
            path.write_text(json.dumps(_mutate_json(data, value)))
            done.append((operation, name, 0.0))
        elif operation == "jsonl" and name.endswith(".jsonl"):
            lines = blob.decode("utf-8", "replace").splitlines()
            if not lines:
                continue
            index = data.draw(st.integers(0, len(lines) - 1), label="line")
            try:
                event = json.loads(lines[index])
                lines[index] = json.dumps(_mutate_json(data, event))
            except ValueError:
                lines[index] = data.draw(st.text(max_size=40), label="garbage")
            path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
            done.append((operation, name, 0.0))
        else:
            mutable = bytearray(blob)
            for _ in range(data.draw(st.integers(1, 6), label="flips")):
                if not mutable:
                    break
                mutable[data.draw(st.integers(0, len(mutable) - 1), label="position")] = data.draw(
                    st.integers(0, 255), label="byte")
            path.write_bytes(bytes(mutable))
            done.append(("bytes", name, 0.0))
    return done


@fuzz_settings(200)
@given(st.data())
def test_fuzz_run_folders(data):
    """Mutated, truncated and missing files of a run: results show and compare give 0, 21 or 23, one line.

    A trial whose events file was deleted, or cut short anywhere but its final newline, is never
    compared as valid.
    """
    with tempfile.TemporaryDirectory(prefix="fuzz-run-") as root:
        run_dir = Path(root) / "run-t"
        shutil.copytree(_template_run(), run_dir)
        done = _mutate_run(data, run_dir)
        for argv in (["results", "show", str(run_dir), "--json"], ["results", "show", str(run_dir)],
                     ["compare", str(run_dir), "--json"]):
            result = run_cli(argv)
            assert_clean(result, RESULTS_CODES)
        compared = result
        listed = run_cli(["results", "list", "--results-dir", root, "--json"])
        assert_clean(listed, {0})
        assert len(json.loads(listed.out)["runs"]) == (1 if (run_dir / "run.json").exists()
                                                       or (run_dir / "trials").is_dir()
                                                       or (run_dir / "result.json").exists() else 0)
    COUNTS["run_folders"] += 1
    events_damaged = any(
        name.split("/")[-1].startswith("events-") and (operation == "delete" or (operation == "truncate"
                                                                                 and fraction < 0.99))
        for operation, name, fraction in done)
    if events_damaged:
        assert compared.code != 0, done


@fuzz_settings(60)
@given(name=st.one_of(st.text(max_size=20), st.sampled_from(["..", ".", "/", "/tmp", "../../../etc", "run-t/..",
                                                              "run-t/trials", "run-t/run.json", "~", "\x00"])))
def test_fuzz_run_names(name):
    """Any run name: a run, or one line and 23 (never a folder outside the results folder)."""
    template = _template_run()
    result = run_cli(["results", "show", "--results-dir", str(template.parent), "--", name])
    COUNTS["run_names"] += 1
    assert_clean(result, {0, ResultsError.exit_code})
    if result.code == 0:
        assert name in ("run-t", "run-t/run.json") or name.rstrip("/") in ("run-t",) or \
            Path(name).resolve() == template.resolve() or (template.parent / name).resolve() == template.resolve()
