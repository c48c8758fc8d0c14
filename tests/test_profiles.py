"""Profiles: the shipped TOML files, validation errors naming file and key, overrides, lookup, CLI."""

from __future__ import annotations

import json

import pytest

from xsched_ops.cli import invoke
from xsched_ops.errors import ProfileError
from xsched_ops.profiles import apply_overrides, find_profile, list_profiles, load_profile


def test_shipped_profiles_match_the_seed():
    original, intensive = load_profile("original"), load_profile("intensive")
    assert (original.high.rate, original.low.batch) == (10, 8)
    assert (intensive.high.rate, intensive.low.batch) == (20, 1024)
    for profile in (original, intensive):
        assert profile.duration_s == 180 and profile.sla_ms == 100
        assert profile.high.model == "torchvision:resnet18" and profile.low.model == "torchvision:resnet50"
        assert profile.xsched.scheduler == "GLB" and profile.xsched.xserver_policy == "HPF"
        assert profile.xsched.xserver_port == 50000
        assert (profile.high.xsched.priority, profile.low.xsched.priority) == (1, 0)
        assert profile.tiers["excellent"].p99_ms == 50 and profile.tiers["acceptable"].low_throughput_loss_pct == 50
    resnet50 = intensive.sim_kernels("torchvision:resnet50")
    assert 480 <= resnet50.inference_ms(1024) <= 520
    assert 3 <= resnet50.inference_ms(8) <= 5
    assert 2 <= intensive.sim_kernels("torchvision:resnet18").inference_ms(1) <= 4


def test_overrides_are_typed_and_validated():
    profile = load_profile("intensive", ["low.batch=512", "arrival.process=poisson", "high.rate=12.5"], duration_s=60)
    assert profile.low.batch == 512 and isinstance(profile.low.batch, int)
    assert profile.arrival.process == "poisson" and profile.high.rate == 12.5 and profile.duration_s == 60
    with pytest.raises(ProfileError) as err:
        apply_overrides(profile, ["low.batchsize=3"])
    assert "low.batchsize" in err.value.one_line() and "low.batch" in err.value.one_line()
    with pytest.raises(ProfileError, match="integer"):
        apply_overrides(profile, ["low.batch=many"])
    with pytest.raises(ProfileError, match="exceeds threshold"):
        apply_overrides(profile, ["low.xsched.batch_size=9"])
    with pytest.raises(ProfileError, match="KEY=VALUE"):
        apply_overrides(profile, ["low.batch"])


def test_override_adds_a_sim_kernel_entry():
    profile = load_profile("intensive", ['sim.models."torchvision:resnet101".kernels=10',
                                         'sim.models."torchvision:resnet101".ms_per_image=1.5',
                                         "low.model=torchvision:resnet101"])
    assert profile.sim_kernels("torchvision:resnet101").inference_ms(1024) == 1536


def test_bad_file_error_names_file_and_key(tmp_path):
    path = tmp_path / "broken.toml"
    text = (find_profile("intensive").read_text()).replace("batch = 1024", "batch = 0")
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load_profile(str(path))
    line = err.value.one_line()
    assert str(path) in line and "low.batch" in line and "greater than or equal to 1" in line
    path.write_text(find_profile("intensive").read_text().replace("sla_ms = 100", "sla_ms = 100\nsla_msec = 3"))
    with pytest.raises(ProfileError, match="sla_msec: unknown key"):
        load_profile(str(path))
    path.write_text("name = [")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(str(path))


def test_env_folder_shadows_repository(tmp_path, monkeypatch):
    text = find_profile("intensive").read_text().replace("rate = 20", "rate = 7")
    (tmp_path / "intensive.toml").write_text(text)
    (tmp_path / "mine.toml").write_text(text.replace('name = "intensive"', 'name = "mine"'))
    monkeypatch.setenv("XSCHED_OPS_PROFILES", str(tmp_path))
    assert load_profile("intensive").high.rate == 7
    assert {"mine", "original", "intensive"} <= {name for name, _, _ in list_profiles()}
    with pytest.raises(ProfileError) as err:
        load_profile("nonexistent")
    assert "known profiles" in err.value.one_line() and "mine" in err.value.one_line()


def test_cli_show_json_and_errors(capsys):
    assert invoke(["profiles", "show", "intensive", "--json", "--set", "low.batch=256", "--duration", "30"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["profile"]["low"]["batch"] == 256 and shown["profile"]["duration_s"] == 30
    assert invoke(["profiles", "show", "intensive", "--set", "low.nope=1"]) == ProfileError.exit_code
    assert invoke(["profiles", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"original", "intensive"} <= {row["name"] for row in listed["profiles"]}


SWEEP_TABLE = """
[sweep]
modes = ["baseline", "xsched"]
repeat = 2
seed = 5
max_duration_s = 120
p99_interval_pct = 15

[sweep.grid]
low.xsched.threshold = [2, 4, 16]
"high.rate" = [10, 20]
"""


def _with_sweep(tmp_path, table: str):
    path = tmp_path / "swept.toml"
    shipped = find_profile("intensive").read_text().split("\n[sweep]")[0]  # its own [sweep] is replaced
    path.write_text(shipped + table)
    return path


def test_sweep_table_dotted_and_quoted_keys_mean_the_same(tmp_path):
    profile = load_profile(str(_with_sweep(tmp_path, SWEEP_TABLE)))
    assert profile.sweep.grid == {"low.xsched.threshold": [2, 4, 16], "high.rate": [10, 20]}
    assert (profile.sweep.modes, profile.sweep.repeat, profile.sweep.seed) == (["baseline", "xsched"], 2, 5)
    assert (profile.sweep.max_duration_s, profile.sweep.p99_interval_pct) == (120, 15)
    assert load_profile("original").sweep.grid == {}  # no table: no grid
    assert load_profile("intensive").sweep.grid == {"low.batch": [8, 64, 256, 1024]}  # the shipped table


@pytest.mark.parametrize(("change", "named"), [
    (("repeat = 2", "repeat = 0"), "key sweep.repeat = 0"),
    (('modes = ["baseline", "xsched"]', 'modes = ["baseline", "fast"]'), "key sweep: mode 'fast' is not a mode"),
    (("max_duration_s = 120", "max_duration_s = 1e9"), "key sweep.max_duration_s = 1000000000"),
    (("[2, 4, 16]", "[2, 4, 99999999]"), "key sweep.grid: the cell low.xsched.threshold=99999999, high.rate=10"),
    (("[2, 4, 16]", "[1, 4]"), "batch_size 2 exceeds threshold 1"),
    (('"high.rate" = [10, 20]', '"high.nope" = [10]'), "--set high.nope: unknown key high.nope"),
    (("[2, 4, 16]", "[2, 2]"), "a value is repeated"),
    (("seed = 5", "colour = 5"), "key sweep.colour: unknown key"),
])
def test_bad_sweep_table_is_one_line_naming_the_key(tmp_path, capsys, change, named):
    path = _with_sweep(tmp_path, SWEEP_TABLE.replace(*change))
    with pytest.raises(ProfileError) as err:
        load_profile(str(path))
    assert named in err.value.one_line() and "\n" not in err.value.one_line()
    assert invoke(["profiles", "show", str(path)]) == ProfileError.exit_code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1
