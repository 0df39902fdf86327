"""Engine.set_adapter: a peft LoRA applied (unmerged) by our engine gives HF peft's greedy tokens; base is exact."""

from __future__ import annotations

import pytest

from inference.config import CacheConfig, EngineConfig
from inference.engine import Engine
from inference.lora import AdapterError
from inference.sampling import SamplingParams
from tests.inference.lora_helpers import hf_greedy, make_peft_adapter

PROMPTS = ["def fib(n):", "class Stack:\n    def push(self, x):", "for i in range(10):"]


@pytest.fixture(scope="module")
def engine(tiny_qwen2_dir):
    cache = CacheConfig(block_size=4, kv_cache_bytes=1 << 22)
    return Engine(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", cache=cache, max_num_seqs=8))


def test_adapter_matches_hf_peft_and_base_is_restored(engine, tiny_qwen2_dir, tmp_path):
    peft_model = make_peft_adapter(tiny_qwen2_dir, tmp_path / "adapter")
    tok = engine.tokenizer
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    base = [o.outputs[0].token_ids for o in engine.generate(PROMPTS, params)]
    key = engine.set_adapter(tmp_path / "adapter", name="test")
    assert key == "test@1" and engine.adapter_key == key
    tuned = [o.outputs[0].token_ids for o in engine.generate(PROMPTS, params)]
    expected = [hf_greedy(peft_model, tok, p, 12) for p in PROMPTS]
    assert tuned == expected
    with peft_model.disable_adapter():
        expected_base = [hf_greedy(peft_model, tok, p, 12) for p in PROMPTS]
    assert tuned != expected_base  # the adapter really changes the output
    assert engine.set_adapter(None) is None
    assert [o.outputs[0].token_ids for o in engine.generate(PROMPTS, params)] == base
    assert base == expected_base


def test_adapter_id_must_be_loaded_and_cache_is_keyed(engine, tiny_qwen2_dir, tmp_path):
    make_peft_adapter(tiny_qwen2_dir, tmp_path / "a", seed=1)
    params = SamplingParams(max_tokens=4, ignore_eos=True)
    prompt = "def add(a, b):\n    return a + b\n" * 3
    engine.generate([prompt], params)  # fills the prefix cache under the base model
    key = engine.set_adapter(tmp_path / "a")
    with pytest.raises(ValueError, match="not loaded"):
        engine.add_request(prompt, params, adapter_id="other@7")
    hits_before = engine.stats().prefix_hit_tokens
    rid = engine.add_request(prompt, params, adapter_id=key)
    while engine.has_unfinished():
        engine.step()
    assert engine.stats().prefix_hit_tokens == hits_before  # base-model KV is not reused under the adapter
    key2 = engine.set_adapter(tmp_path / "a")
    assert key2 != key and rid
    engine.set_adapter(None)
    assert engine.stats().num_blocks_owned == 0


def test_bad_adapter_leaves_weights_unchanged(engine, tmp_path):
    params = SamplingParams(max_tokens=6, ignore_eos=True)
    before = engine.generate(PROMPTS[:1], params)[0].outputs[0].token_ids
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError):
        engine.set_adapter(tmp_path / "bad")
    assert engine.adapter_key is None
    assert engine.generate(PROMPTS[:1], params)[0].outputs[0].token_ids == before


def test_eval_generator_loads_an_adapter_folder(tiny_qwen2_dir, tmp_path):
    """`codeloop eval --adapter PATH`: the folder is loaded and requests carry its key."""
    from evals.generate import EngineGenerator, GenRequest

    make_peft_adapter(tiny_qwen2_dir, tmp_path / "adapter")
    gen = EngineGenerator.load(str(tiny_qwen2_dir), str(tmp_path / "adapter"), dtype="float32")
    assert gen.adapter_id is not None and gen.adapter_id == gen.engine.adapter_key
    out = list(gen.generate([GenRequest(("t", 0), "def f():", stop=(), max_tokens=4)]))
    assert len(out) == 1 and not out[0].error
