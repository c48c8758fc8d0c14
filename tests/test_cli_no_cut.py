"""Nothing is cut (issue 14, part 4): ldd, profiles list, results list/show, compare and sandbox scenarios,
run as a user runs them (a real process) in a terminal (a pseudo-terminal of 40, 80 and 200 columns) and
through a pipe (stdout a pipe, COLUMNS set). No "…" anywhere; every path, run id, symbol and name appears
whole on one line; a line wider than the terminal holds a single word (a path longer than the line, which
the terminal folds and which stays one line when copied)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest
from loader_fixtures import build_xsched_like, have_toolchain
from test_results_builders import write_run, write_trial

from xsched_ops.results import finalize_run

WIDTHS = [40, 80, 200]
HOW = ["terminal", "pipe"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
GUIDES = re.compile(r"[│├└─]")


def run_cli(args: list[str], columns: int, how: str) -> str:
    """``xsched-ops ARGS``'s stdout, from a pseudo-terminal of ``columns`` columns or from a pipe."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "COLUMNS": str(columns), "TERM": "xterm-256color"}
    argv = [sys.executable, "-m", "xsched_ops", *args]
    if how == "pipe":
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr.decode(), stderr
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def assert_nothing_cut(text: str, columns: int, how: str, whole: list[str]) -> None:
    assert text.strip()
    assert "…" not in text
    lines = text.splitlines()
    for item in whole:
        assert any(item in line for line in lines), (item, text)
    if how == "terminal":
        wide = [line for line in lines if len(line.rstrip()) > columns and len(GUIDES.sub(" ", line).split()) > 1]
        assert not wide, wide


# -- ldd ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xsched(tmp_path_factory):
    if not have_toolchain():
        pytest.skip("needs gcc, g++ and the x86-64 loader")
    return build_xsched_like(tmp_path_factory.mktemp("nocut") / "data/dockercode/xsched-build-with-a-long-name")


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("columns", WIDTHS)
def test_ldd_wraps_and_never_crops(xsched, columns, how):
    text = run_cli(["ldd", "--local", "/bin/true", "--env", f"LD_LIBRARY_PATH={xsched['stale_dir']}:{xsched['lib']}",
                    "--env", f"LD_PRELOAD={xsched['shim']}"], columns, how)
    paths = [str(xsched[key]) for key in ("shim", "stale_hal", "hal", "preempt")]
    assert_nothing_cut(text, columns, how, paths + ["_ZTIN6xsched3hip10HipCommandE", "xsched::hip::HipCommand"])
    words = " ".join(GUIDES.sub(" ", text).split())  # a reason wraps between words, whole
    assert f"libhalhip.so => {xsched['stale_hal']} [found via LD_LIBRARY_PATH entry 1]" in words
    if how == "pipe" or columns == 200:  # one line per edge, for grep
        assert f"libhalhip.so => {xsched['stale_hal']} [found via LD_LIBRARY_PATH entry 1]" in text


# -- profiles, sandbox scenarios ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def profiles_listed():
    return json.loads(run_cli(["profiles", "list", "--json"], 200, "pipe"))["profiles"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("columns", WIDTHS)
def test_profiles_list_shows_every_file_whole(profiles_listed, columns, how):
    listed = profiles_listed
    text = run_cli(["profiles", "list"], columns, how)
    assert_nothing_cut(text, columns, how, [row["path"] for row in listed] + [row["name"] for row in listed])


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("columns", WIDTHS)
def test_sandbox_scenarios_shows_every_name_whole(columns, how):
    from xsched_ops.sandbox import SCENARIOS

    text = run_cli(["sandbox", "scenarios"], columns, how)
    assert_nothing_cut(text, columns, how, list(SCENARIOS))
    assert set(" ".join(SCENARIOS["seed"].description.split()).split()) <= set(text.split())


# -- results list, results show, compare --------------------------------------------------------------

@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("nocut") / "a-results-folder-with-a-name-longer-than-forty-columns"
    base = write_run(root, "20250101-120000-intensive-baseline-run", created_wall=1000.0)
    under = write_run(root, "20250101-130000-intensive-xsched-run", created_wall=2000.0)
    write_trial(base, 0, "standalone", latency_ms=5.0)
    write_trial(base, 1, "baseline", latency_ms=574.5, low_iter_s=1 / 1.97)
    for repeat in range(2):
        write_trial(under, repeat, "xsched", latency_ms=45.0 + repeat, low_iter_s=1 / 1.75, repeat=repeat)
    finalize_run(base), finalize_run(under)
    damaged = root / "20250102-000000-damaged-run-with-a-long-name"
    damaged.mkdir()
    (damaged / "run.json").write_text("{ not json")
    return root


BASELINE_RUN, XSCHED_RUN = "20250101-120000-intensive-baseline-run", "20250101-130000-intensive-xsched-run"


@pytest.fixture(scope="module")
def results_json(results):
    """What ``results show --json`` and ``compare --json`` say: the values the tables must show whole."""
    shown = json.loads(run_cli(["results", "show", BASELINE_RUN, "--results-dir", str(results), "--json"], 200, "pipe"))
    compared = json.loads(run_cli(["compare", BASELINE_RUN, XSCHED_RUN, "--results-dir", str(results), "--json"], 200,
                                  "pipe"))
    return shown["result"]["trials"], compared["comparison"]["rows"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("columns", WIDTHS)
def test_results_list_shows_every_run_and_path_whole(results, columns, how):
    text = run_cli(["results", "list", "--results-dir", str(results)], columns, how)
    runs = [path.name for path in results.iterdir()]
    assert_nothing_cut(text, columns, how, runs + [str(results / "20250102-000000-damaged-run-with-a-long-name")])


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("columns", WIDTHS)
def test_results_show_and_compare_show_every_value_whole(results, results_json, columns, how):
    trials, rows = results_json
    text = run_cli(["results", "show", BASELINE_RUN, "--results-dir", str(results)], columns, how)
    assert_nothing_cut(text, columns, how, [trial["trial_id"] for trial in trials] + [BASELINE_RUN])

    text = run_cli(["compare", BASELINE_RUN, XSCHED_RUN, "--results-dir", str(results)], columns, how)
    assert_nothing_cut(text, columns, how, [f"{row['metric']} ({row['unit']})".split()[-1] for row in rows])
    words = text.split()
    for row in rows:
        assert all(word in words for word in row["metric"].split()), row["metric"]


# -- the tree renderer itself -------------------------------------------------------------------------

@pytest.mark.parametrize("width", [20, 40, 80])
def test_tree_lines_wrap_labels_between_words_under_their_guides(width):
    from rich.text import Text

    from xsched_ops.cli.render import TreeNode, tree_lines

    path = "/data/dockercode/xsched-build/output/lib/libhalhip.so"
    root = TreeNode(Text("/usr/bin/python3 (starts)"))
    first = root.add(Text(f"libshimhip.so => {path} [found via LD_LIBRARY_PATH entry 2]"))
    first.add(Text(f"libhalhip.so => {path} [RUNPATH of libshimhip.so]"))
    root.add(Text("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 [ld.so.cache]"))
    lines = [line.plain for line in tree_lines(root, width)]
    assert sum(path in line for line in lines) == 2
    assert all(len(line) <= width or len(GUIDES.sub(" ", line).split()) == 1 for line in lines), lines
    assert lines[0].startswith("/usr/bin/python3")
    first_child = next(index for index, line in enumerate(lines) if line.startswith("├── libshimhip.so"))
    assert all(line.startswith("  ") for line in lines[1:first_child])  # the root's label, wrapped
    last = next(index for index, line in enumerate(lines) if line.startswith("└── libc.so.6"))
    assert all(line.startswith("│") for line in lines[first_child + 1:last])  # the first child and its subtree
    joined = " ".join(GUIDES.sub(" ", "\n".join(lines)).split())
    assert f"libhalhip.so => {path} [RUNPATH of libshimhip.so]" in joined
