"""The llm-decode profile's model file builds and decodes on the CPU (a tiny GPT-2 configuration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xsched_ops.profiles import load_profile

MODEL_FILE = Path(__file__).resolve().parents[1] / "profiles" / "models" / "gpt2_decode.py"


def test_profile_gives_the_model_as_a_user_file() -> None:
    profile = load_profile("llm-decode")
    assert profile.high.model == "file:profiles/models/gpt2_decode.py:build"
    assert profile.high.model in profile.sim.models  # the simulated device knows it too


def test_tiny_decode_runs_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    for name, value in {"XSCHED_OPS_GPT2_LAYERS": "2", "XSCHED_OPS_GPT2_EMBED": "64",
                        "XSCHED_OPS_GPT2_HEADS": "2", "XSCHED_OPS_GPT2_NEW_TOKENS": "5"}.items():
        monkeypatch.setenv(name, value)
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpt2_decode_under_test", MODEL_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build().eval()
    noise = torch.randn((1, *module.INPUT_SHAPE))
    with torch.inference_mode():
        token = model(noise)
    assert token.shape == (1, 1) and token.dtype == torch.long
    with torch.inference_mode():
        assert torch.equal(model(noise), token)  # greedy: the same prompt gives the same tokens


def test_without_transformers_the_factory_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import importlib.util

    real_import = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name.startswith("transformers"):
            raise ImportError("No module named 'transformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    spec = importlib.util.spec_from_file_location("gpt2_decode_no_tf", MODEL_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(RuntimeError, match="pip install transformers"):
        module.build()
