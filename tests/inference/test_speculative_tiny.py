"""Speculative decoding on real (tiny, random) models: greedy output token-identical with and without it.

Hybrid weights compute generated rows with row-independent packed kernels and decode-style attention, so a
generated token gets the same logits whether it is decoded alone, next to other requests, as a draft under
verification or recomputed after preemption. fp32 keeps prompt rows (dense GEMMs) equal across batch
shapes too, so every comparison below is exact.
"""

from __future__ import annotations

import pytest

from inference.config import CacheConfig, EngineConfig, SpeculativeConfig
from inference.engine import Engine
from inference.sampling import SamplingParams

REPEATS = "def add(a, b):\n    return a + b\n\ndef add(a, b):\n"
PROMPTS = [
    REPEATS,
    "x = [n for n in numbers if n % 2 == 0]\nreturn sorted(x, reverse=True)\nx = [n for",
    "for i in range(10):\n    print(i",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):",
    "x",
]
PARAMS = SamplingParams(max_tokens=24, ignore_eos=True)


def make_engine(model_dir, *, weight_quant="hybrid_int4", method="none", draft=None, num_blocks=256,
                budget=512, num_tokens=4, max_num_seqs=8, compile_decode="auto"):
    spec = SpeculativeConfig(method=method, num_tokens=num_tokens, ngram_min=1, ngram_max=3,
                             draft_model=str(draft) if draft else None, draft_weight_quant=weight_quant,
                             max_batch=8, adaptive=False)
    config = EngineConfig(model=str(model_dir), dtype="float32", weight_quant=weight_quant,
                          cache=CacheConfig(block_size=4, kv_cache_bytes=1), max_num_batched_tokens=budget,
                          max_num_seqs=max_num_seqs, speculative=spec, compile_decode=compile_decode)
    from inference.model_runner import ModelRunner

    runner = ModelRunner(config)
    config.cache.kv_cache_bytes = num_blocks * runner.bytes_per_block()
    return Engine(config, runner=runner)


def tokens(outs) -> list[list[int]]:
    return [o.outputs[0].token_ids for o in outs]


@pytest.fixture(scope="module")
def other_qwen2_dir(tmp_path_factory):
    """Another random tiny Qwen2 (same tokenizer, other weights): a draft model that is often wrong."""
    from inference.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen2-other"), arch="qwen2", seed=5)


@pytest.fixture(scope="module")
def alone(tiny_qwen2_dir) -> dict[str, list[list[int]]]:
    """Each prompt generated alone without speculation, per weight mode: the reference outputs."""
    out = {}
    for wq in ("hybrid_int4", "hybrid_int8", "hybrid_fp16"):
        engine = make_engine(tiny_qwen2_dir, weight_quant=wq)
        out[wq] = [tokens(engine.generate([p], PARAMS))[0] for p in PROMPTS]
    return out


@pytest.mark.parametrize("weight_quant", ["hybrid_int4", "hybrid_int8", "hybrid_fp16"])
@pytest.mark.parametrize("method", ["ngram", "draft-self", "draft-other"])
def test_greedy_identical_with_speculation(tiny_qwen2_dir, other_qwen2_dir, alone, weight_quant, method):
    draft = {"draft-self": tiny_qwen2_dir, "draft-other": other_qwen2_dir}.get(method)
    engine = make_engine(tiny_qwen2_dir, weight_quant=weight_quant, method=method.split("-")[0], draft=draft)
    assert tokens(engine.generate(PROMPTS, PARAMS)) == alone[weight_quant]
    stats = engine.stats()
    assert stats.num_draft_tokens > 0 and stats.num_blocks_owned == 0
    if method == "draft-self":  # the model drafting for itself is always right
        assert stats.num_accepted_tokens == stats.num_draft_tokens


def test_staggered_arrivals_and_chunked_prefill(tiny_qwen2_dir, alone):
    """Requests arriving while others decode, prompts split over steps: still the lone outputs."""
    engine = make_engine(tiny_qwen2_dir, method="ngram", budget=24)
    ids, final = [], {}
    pending = list(PROMPTS)
    while pending or engine.has_unfinished():
        if pending:
            ids.append(engine.add_request(pending.pop(0), PARAMS))
        for _ in range(2):
            for out in engine.step():
                if out.finished:
                    final[out.request_id] = out.outputs[0].token_ids
    assert [final[i] for i in ids] == alone["hybrid_int4"]
    assert engine.stats().num_accepted_tokens > 0


def test_preemption_with_speculation(tiny_qwen2_dir, alone):
    """A KV pool too small for all requests: preempted sequences recompute their generated tokens as
    generated rows (and hit their own cached blocks), so nothing changes."""
    engine = make_engine(tiny_qwen2_dir, method="draft", draft=tiny_qwen2_dir, num_blocks=40)
    assert tokens(engine.generate(PROMPTS, PARAMS)) == alone["hybrid_int4"]
    assert engine.stats().num_preemptions > 0 and engine.stats().num_accepted_tokens > 0


def test_with_adapters_mixed_with_base_requests(tiny_qwen2_dir, alone, tmp_path):
    """Unmerged LoRA deltas add to whichever weights ran (dense or packed): requests of an adapter and of
    the base model in the same speculative steps each get their lone output."""
    from tests.inference.lora_helpers import make_peft_adapter

    make_peft_adapter(tiny_qwen2_dir, tmp_path / "adapter")
    plain = make_engine(tiny_qwen2_dir)
    spec = make_engine(tiny_qwen2_dir, method="ngram")
    for engine in (plain, spec):
        engine.load_adapter(tmp_path / "adapter", name="a")
    tuned = [tokens(plain.generate([p], PARAMS, adapter_id="a"))[0] for p in PROMPTS]
    assert tuned != alone["hybrid_int4"]  # the adapter changes the output
    ids = [spec.add_request(p, PARAMS, adapter_id="a" if i % 2 else None) for i, p in enumerate(PROMPTS * 2)]
    final = {}
    while spec.has_unfinished():
        for out in spec.step():
            if out.finished:
                final[out.request_id] = out.outputs[0].token_ids
    expected = [tuned[i % len(PROMPTS)] if i % 2 else alone["hybrid_int4"][i % len(PROMPTS)] for i in range(len(ids))]
    assert [final[i] for i in ids] == expected
    assert spec.stats().num_accepted_tokens > 0


def test_penalties_count_the_drafts_before_each_row(tiny_qwen2_dir):
    """With repetition / frequency penalties, row i of a verification sees drafts 0..i-1 as generated."""
    params = SamplingParams(max_tokens=24, ignore_eos=True, repetition_penalty=1.3, frequency_penalty=0.2)
    plain = make_engine(tiny_qwen2_dir)
    expected = [tokens(plain.generate([p], params))[0] for p in PROMPTS]
    spec = make_engine(tiny_qwen2_dir, method="draft", draft=tiny_qwen2_dir)
    assert tokens(spec.generate(PROMPTS, params)) == expected
    assert spec.stats().num_accepted_tokens > 0


def test_draft_model_needs_the_same_tokenizer(tiny_qwen2_dir, tiny_llama_dir):
    """The tiny Llama's tokenizer splits indentation differently: its drafts would be other tokens."""
    with pytest.raises(ValueError, match="tokenizer differs"):
        make_engine(tiny_qwen2_dir, method="draft", draft=tiny_llama_dir)


def test_abort_while_drafting_frees_everything(tiny_qwen2_dir, alone):
    """A request aborted after its drafts were verified (the editor cancelling a completion) returns every KV
    block at once; the request beside it still gets its lone output."""
    engine = make_engine(tiny_qwen2_dir, method="ngram")
    doomed = engine.add_request(PROMPTS[0], PARAMS)
    kept = engine.add_request(PROMPTS[1], PARAMS)
    while engine.stats().num_accepted_tokens == 0:
        engine.step()
    engine.abort(doomed)
    final = {}
    while engine.has_unfinished():
        for out in engine.step():
            if out.finished:
                final[out.request_id] = out
    assert final[doomed].outputs[0].finish_reason == "abort"
    assert final[kept].outputs[0].token_ids == alone["hybrid_int4"][1]
    assert engine.stats().num_blocks_owned == 0 and engine.stats().num_running == 0
