"""Narrow terminals and empty runs: the terminal tables cut nothing off; a report of a run without samples
is written without a matplotlib warning and says "no samples"."""

from __future__ import annotations

import io
import warnings

import pytest
from rich.console import Console
from test_results_builders import write_run, write_trial

from xsched_ops.cli.render import _row_cells, render_comparison, render_run, render_run_list
from xsched_ops.report import write_report
from xsched_ops.results import TrialMeta, compare, finalize_run, trial_dir_for, write_trial_meta
from xsched_ops.results.store import list_runs


def seed_runs(tmp_path):
    """A baseline run (standalone, baseline, priority-streams) and an XSched run (repeated), as compare() wants."""
    base = write_run(tmp_path, "20250101-120000-intensive", created_wall=1000.0)
    under = write_run(tmp_path, "20250101-130000-intensive", created_wall=2000.0)
    write_trial(base, 0, "standalone", latency_ms=5.0)
    write_trial(base, 1, "baseline", latency_ms=574.5, low_iter_s=1 / 1.97)
    write_trial(base, 2, "priority-streams", latency_ms=1234.56, low_iter_s=1 / 1.9)
    for repeat in range(2):
        write_trial(under, repeat, "xsched", latency_ms=45.0 + repeat, low_iter_s=1 / 1.75, repeat=repeat)
    return finalize_run(base), finalize_run(under)


def recording_console(width: int) -> Console:
    return Console(width=width, record=True, file=io.StringIO(), color_system=None)


def assert_nothing_cut(text: str, width: int) -> None:
    assert "…" not in text
    too_long = [line for line in text.splitlines() if len(line.rstrip()) > width]
    assert not too_long, too_long


@pytest.mark.parametrize("width", [80, 60, 40])
def test_run_table_shows_every_value_on_a_narrow_console(tmp_path, width):
    for result in seed_runs(tmp_path):
        console = recording_console(width)
        render_run(console, result)
        text = console.export_text()
        assert_nothing_cut(text, width)
        for trial in result.trials:
            assert trial.trial_id in text  # "01-baseline", "02-priority-streams", in full
            high = trial.high
            assert f"{high.latency_ms.p50:.2f}" in text and f"{high.latency_ms.p99:.2f}" in text
            assert f"{high.achieved_rate:.2f}/{high.target_rate:g}" in text
            if trial.low is not None:
                assert f"{trial.low.iter_per_s:.2f}" in text
            assert str(high.latency_ms.count) in text
            for role, evidence in trial.roles.items():
                assert f"{role}:{'yes' if evidence.shim_mapped else 'no'}" in text
        words = text.split()
        assert ("high:no" in words and "low:no" in words) or ("high:yes" in words and "low:yes" in words)


@pytest.mark.parametrize("width", [80, 60, 40])
def test_comparison_and_run_list_show_every_value_on_a_narrow_console(tmp_path, width):
    baseline, xsched = seed_runs(tmp_path)
    comparison = compare(baseline, xsched)
    console = recording_console(width)
    render_comparison(console, comparison)
    text = console.export_text()
    assert_nothing_cut(text, width)
    words = text.split()
    for row in comparison.rows:
        assert all(word in words for word in row.metric.split())  # wrapped at most between words
        baseline, under, change = _row_cells(row)
        assert baseline.split()[0] in words and under.split()[0] in words and change in words

    console = recording_console(width)
    render_run_list(console, list_runs(tmp_path))
    text = console.export_text()
    assert_nothing_cut(text, width)
    for run_id in ("20250101-120000-intensive", "20250101-130000-intensive"):
        assert run_id in text
    assert "zhenflashinfer_v1" in text and "priority-streams" in text


def test_wide_console_keeps_one_row_per_trial(tmp_path):
    baseline, _ = seed_runs(tmp_path)
    console = recording_console(120)
    render_run(console, baseline)
    lines = console.export_text().splitlines()
    row = next(line for line in lines if line.startswith("01-baseline"))
    assert "574.50" in row and "high:no low:no" in row


def failed_before_start(run_dir, index: int, mode: str) -> None:
    """A trial whose container died before any role started: trial.json and nothing else."""
    trial_dir = trial_dir_for(run_dir, index, mode)
    trial_dir.mkdir(parents=True)
    write_trial_meta(trial_dir, TrialMeta(
        mode=mode, repeat=0, placement="processes", backend="sim", simulated=True, duration_s=20.0,
        target_rate=20.0, role_env={}, started_wall=1735732800.0, ended_wall=1735732801.0, status="failed",
        reason="the container exited before any role started", launcher_exit_code=1))


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_report_of_a_run_without_samples_warns_nothing_and_says_so(tmp_path, fmt):
    base = write_run(tmp_path, "run-base", created_wall=1000.0)
    under = write_run(tmp_path, "run-xsched", created_wall=2000.0)
    failed_before_start(base, 0, "standalone")
    failed_before_start(base, 1, "baseline")
    failed_before_start(under, 0, "xsched")
    runs = [finalize_run(base), finalize_run(under)]
    assert all(trial.high is None for run in runs for trial in run.trials)
    out = tmp_path / "out" / f"report.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels found to put in legend" fails here
        write_report(runs, out, fmt=fmt)
    page = out.read_text()
    assert page.count("no samples") >= 4  # every plot's caption
    assert "INVALID" in page or "invalid" in page


@pytest.mark.parametrize("width", [40, 80, 200])
def test_wrap_words_breaks_only_between_words_and_keeps_quoted_commands_whole(width):
    from xsched_ops.cli.render import print_lines, wrap_words

    path = "/data/dockercode/xsched-build/output/lib/libhalhip.so"
    command = "`docker run --device=/dev/kfd --device=/dev/dri --group-add video ...`"
    text = f"the loader picked {path} (found via LD_LIBRARY_PATH entry 1); recreate the container with {command}"
    lines = wrap_words(text, width, "    ")
    assert " ".join(" ".join(lines).split()) == text
    assert any(path in line for line in lines) and any(command in line for line in lines)
    assert all(len(line) <= width or len(line.split()) == 1 or "`" in line for line in lines), lines
    console = recording_console(width)
    print_lines(console, [f"    export LD_LIBRARY_PATH={path}:{path}"])
    assert console.export_text().splitlines() == [f"    export LD_LIBRARY_PATH={path}:{path}"]


def test_terminal_rendering_lives_on_the_command_line_side():
    """results/ and report/ are the data side: they import no rich (issue 13, part 6)."""
    import subprocess
    import sys

    code = ("import sys, xsched_ops.results, xsched_ops.results.render, xsched_ops.report.build\n"
            "print(sorted(name for name in sys.modules if name == 'rich' or name.startswith('rich.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    from xsched_ops.results import render as figures

    assert not hasattr(figures, "print_table")  # terminal rendering has one home: xsched_ops/cli/render.py


@pytest.mark.parametrize("width", [20, 40, 80])
def test_table_too_wide_becomes_blocks_with_every_path_whole(width):
    from rich.text import Text

    from xsched_ops.cli.render import plain_table, print_table

    paths = ["/data/dockercode/xsched-build/output/lib/libhalhip.so", "/opt/legacy/xsched/lib/libshimhip.so"]
    table = plain_table("name", "summary", "file")
    for index, path in enumerate(paths):
        table.add_row(Text(f"profile-{index}"), Text("high resnet18 b1 @ 20 req/s; low resnet50 b1024; 180 s"),
                      Text(path))
    console = recording_console(width)
    print_table(console, table)
    text = console.export_text()
    assert "…" not in text
    lines = text.splitlines()
    for path in paths:
        assert any(path in line for line in lines), text
    assert all(len(line.rstrip()) <= width or len(line.split()) == 1 for line in lines), lines
