"""Our Llama-family forward vs HF transformers on tiny random models, through the paged KV cache."""

from __future__ import annotations

import pytest
import torch

from inference.batch import SeqChunk, StepBatch
from inference.config import CacheConfig, EngineConfig
from inference.model_runner import ModelRunner
from tests.inference.runner_driver import BlockHandout, DrivenSeq

# max |logit diff| allowed, relative to max |logit| of the reference
TOL = {"float32": 1e-5, "bfloat16": 3e-2}
PROMPTS = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1)",
    "class Stack:",
    "import os\nimport sys\n\nfor i in range(10):\n    print(i * i)\n",
]


def hf_logits(model_dir, dtype: str, ids: list[int]) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    with torch.no_grad():
        return hf(torch.tensor([ids])).logits[0].float()


def make_runner(model_dir, dtype="float32", kv="auto", block_size=4, num_blocks=96) -> ModelRunner:
    runner = ModelRunner(EngineConfig(model=str(model_dir), dtype=dtype,
                                      cache=CacheConfig(block_size=block_size, kv_cache_dtype=kv)))
    runner.allocate_kv(num_blocks)
    return runner


def paged_logits(runner: ModelRunner, seqs_ids: list[list[int]], num_prompt: list[int]) -> list[torch.Tensor]:
    """Run sequences together: the prompt in two chunks (steps 1-2; the second sequence starts one step
    late), then one decode token per step. Returns per-sequence logits at every position."""
    bs = runner.block_size
    handout = BlockHandout(runner.num_blocks, seed=3)
    seqs = [DrivenSeq(i, ids) for i, ids in enumerate(seqs_ids)]
    out: list[list[torch.Tensor]] = [[] for _ in seqs]
    step = 0
    while any(s.num_computed < len(s.tokens) for s in seqs):
        chunks, order = [], []
        for s in seqs:
            if s.num_computed >= len(s.tokens) or (s.seq_id == 1 and step == 0):
                continue
            p = num_prompt[s.seq_id]
            n = (p // 2 if s.num_computed == 0 else p - p // 2) if s.num_computed < p else 1
            blocks_before = len(s.block_table)
            handout.grow(s, s.num_computed + n, bs)
            assert len(s.block_table) >= blocks_before
            chunks.append(SeqChunk(s.seq_id, s.tokens[s.num_computed:s.num_computed + n], s.num_computed,
                                   list(s.block_table), sample=False))
            order.append((s, n))
        logits = runner.forward_logits(StepBatch(chunks=chunks))
        start = 0
        for s, n in order:
            out[s.seq_id].append(logits[start:start + n])
            start += n
            s.num_computed += n
        step += 1
    return [torch.cat(o) for o in out]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_paged_logits_match_hf(tiny_model_dir, dtype):
    runner = make_runner(tiny_model_dir, dtype)
    tok = runner.tokenizer
    seqs = [tok(p).input_ids for p in PROMPTS]
    num_prompt = [len(s) - 5 for s in seqs]  # last 5 tokens of each go through decode steps
    ours = paged_logits(runner, seqs, num_prompt)
    for ids, got in zip(seqs, ours, strict=True):
        ref = hf_logits(tiny_model_dir, dtype, ids)
        err = (got - ref).abs().max().item() / ref.abs().max().item()
        assert err < TOL[dtype], f"relative logit error {err:.2e}"
        assert torch.equal(got.argmax(-1), ref.argmax(-1)) or dtype == "bfloat16"


def test_int8_kv_close_to_dense(tiny_model_dir):
    dense = make_runner(tiny_model_dir, "float32")
    int8 = make_runner(tiny_model_dir, "float32", kv="int8")
    tok = dense.tokenizer
    seqs = [tok(p).input_ids for p in PROMPTS]
    num_prompt = [len(s) - 5 for s in seqs]
    for a, b in zip(paged_logits(dense, seqs, num_prompt), paged_logits(int8, seqs, num_prompt), strict=True):
        err = (a - b).abs().max().item() / a.abs().max().item()
        assert 0 < err < 2e-2, f"int8 KV relative logit error {err:.2e}"
        assert (a.argmax(-1) == b.argmax(-1)).float().mean() > 0.9


def test_block_size_and_layout_do_not_change_logits(tiny_qwen2_dir):
    tok_ids = make_runner(tiny_qwen2_dir).tokenizer(PROMPTS[0]).input_ids
    a = paged_logits(make_runner(tiny_qwen2_dir, block_size=1, num_blocks=200), [tok_ids], [10])[0]
    b = paged_logits(make_runner(tiny_qwen2_dir, block_size=16, num_blocks=8), [tok_ids], [10])[0]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
