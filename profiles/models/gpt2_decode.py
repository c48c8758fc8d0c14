"""An LLM decode as a workload role: GPT-2 small from its configuration, greedy tokens per request.

Given to a profile as ``file:profiles/models/gpt2_decode.py:build`` (the "bring your own model"
path: copy this file to start your own). Random weights, nothing downloaded: built from
``GPT2Config`` of the ``transformers`` package. One request (one call of the module) is a
fixed prompt of ``PROMPT_TOKENS`` tokens, then ``NEW_TOKENS`` greedy tokens with the KV cache,
so a request's latency is a whole decode (tokens/s = NEW_TOKENS / latency).

Sizes come from the environment when set (the CPU test uses a tiny model):
XSCHED_OPS_GPT2_LAYERS, XSCHED_OPS_GPT2_EMBED, XSCHED_OPS_GPT2_HEADS, XSCHED_OPS_GPT2_NEW_TOKENS.
"""

import os

PROMPT_TOKENS = 64
NEW_TOKENS = int(os.environ.get("XSCHED_OPS_GPT2_NEW_TOKENS", "32"))
# The workload feeds torch.randn(batch, *INPUT_SHAPE); the module turns it into token ids.
INPUT_SHAPE = (PROMPT_TOKENS,)


def build():
    try:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as err:
        raise RuntimeError(f"the llm-decode role needs the transformers package ({err}): "
                           "pip install transformers in the target") from err

    config = GPT2Config(n_layer=int(os.environ.get("XSCHED_OPS_GPT2_LAYERS", "12")),
                        n_embd=int(os.environ.get("XSCHED_OPS_GPT2_EMBED", "768")),
                        n_head=int(os.environ.get("XSCHED_OPS_GPT2_HEADS", "12")))
    torch.manual_seed(0)

    class GreedyDecode(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = GPT2LMHeadModel(config)

        def forward(self, noise):
            ids = (noise.abs() * 997).long() % config.vocab_size
            output = self.model(input_ids=ids, use_cache=True)
            past, token = output.past_key_values, output.logits[:, -1:].argmax(-1)
            for _ in range(NEW_TOKENS - 1):
                output = self.model(input_ids=token, past_key_values=past, use_cache=True)
                past, token = output.past_key_values, output.logits[:, -1:].argmax(-1)
            return token

    return GreedyDecode()
