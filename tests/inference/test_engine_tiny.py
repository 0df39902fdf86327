"""End to end with a real (tiny, random) model: the engine against HF transformers."""

import dataclasses

import pytest
import torch

from inference.config import CacheConfig, EngineConfig
from inference.engine import Engine
from inference.sampling import SamplingParams

PROMPTS = [
    "def fib(n):",
    "import os\nimport sys\n\nif __name__ == '__main__':",
    "x",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):",
    "for i in range(10):\n    print(i",
]


def make_engine(model_dir, *, num_blocks=256, caching=True, budget=512, max_num_seqs=16, block_size=4):
    cache = CacheConfig(block_size=block_size, kv_cache_bytes=1, enable_prefix_caching=caching)
    config = EngineConfig(model=str(model_dir), dtype="float32", cache=cache, max_num_batched_tokens=budget,
                          max_num_seqs=max_num_seqs)
    from inference.model_runner import ModelRunner

    runner = ModelRunner(config)
    config.cache.kv_cache_bytes = num_blocks * runner.bytes_per_block()
    return Engine(config, runner=runner)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return make_engine(tiny_model_dir)


def hf_logits(model_dir, sequences):
    """HF transformers' fp32 logits at every position of each sequence (teacher forcing)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        return [model(torch.tensor([seq])).logits[0] for seq in sequences]


def test_greedy_matches_hf_transformers(engine, tiny_model_dir):
    """Every engine token is HF's argmax given the same context (a random model has exact near-ties,
    where batched float sums may pick the other token, so ties within 1e-4 are accepted)."""
    params = SamplingParams(max_tokens=24)
    outs = engine.generate(PROMPTS, params)
    eos = engine.runner.eos_token_ids
    prompt_ids = [engine.tokenizer.encode(p) for p in PROMPTS]
    generated = [o.outputs[0].token_ids for o in outs]
    all_logits = hf_logits(tiny_model_dir, [p + g for p, g in zip(prompt_ids, generated, strict=True)])
    num_exact = 0
    for prompt, tokens, logits in zip(prompt_ids, generated, all_logits, strict=True):
        assert len(tokens) == 24 or tokens[-1] in eos
        steps = logits[len(prompt) - 1:len(prompt) - 1 + len(tokens)]  # [num_generated, vocab]
        chosen = steps[range(len(tokens)), tokens]
        assert (chosen >= steps.max(dim=-1).values - 1e-4).all()
        num_exact += int((steps.argmax(dim=-1) == torch.tensor(tokens)).sum())
    assert num_exact >= 0.9 * sum(len(t) for t in generated)
    assert [o.outputs[0].text for o in outs] == [
        engine.tokenizer.decode(t, skip_special_tokens=True) for t in generated
    ]
    assert engine.stats().num_blocks_owned == 0


def test_batched_chunked_preempted_equals_one_at_a_time(tiny_qwen2_dir):
    tiny_model_dir = tiny_qwen2_dir
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    alone = make_engine(tiny_model_dir, caching=False)
    singles = [alone.generate([p], params)[0].outputs[0].token_ids for p in PROMPTS]
    tight = make_engine(tiny_model_dir, num_blocks=20, budget=9, max_num_seqs=5, caching=True)
    batched = tight.generate(PROMPTS * 2, params)
    assert [o.outputs[0].token_ids for o in batched] == singles * 2
    stats = tight.stats()
    assert stats.num_preemptions > 0 and stats.prefix_hit_tokens > 0 and stats.num_blocks_owned == 0


def test_prefix_cache_hit_never_changes_output(tiny_llama_dir):
    tiny_model_dir = tiny_llama_dir
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    shared = "def solve(values):\n    total = 0\n    for v in values:\n"
    prompts = [shared + "        total += v", shared + "        print(v)", shared]
    cold = make_engine(tiny_model_dir, caching=False).generate(prompts, params)
    warm_engine = make_engine(tiny_model_dir, caching=True)
    warm_engine.generate(prompts, params)
    warm = warm_engine.generate(prompts, params)
    assert all(o.num_cached_tokens > 0 for o in warm)
    assert [o.outputs[0].token_ids for o in warm] == [o.outputs[0].token_ids for o in cold]
    warm_engine.reset_prefix_cache()  # benchmarks of fresh prompts: nothing cached is reused afterwards
    fresh = warm_engine.generate(prompts[:1], params)
    assert fresh[0].num_cached_tokens == 0 and fresh[0].outputs[0].token_ids == cold[0].outputs[0].token_ids


def test_n_samples_with_seed_are_reproducible_and_batch_independent(tiny_qwen2_dir):
    tiny_model_dir = tiny_qwen2_dir
    engine = make_engine(tiny_model_dir)
    params = SamplingParams(max_tokens=12, n=3, temperature=1.0, seed=7, ignore_eos=True)
    first = engine.generate(["def fib(n):"], params)[0]
    busy = engine.generate(["def fib(n):", "import os", "x = 1"], params)[0]
    other = make_engine(tiny_model_dir, block_size=8).generate(["def fib(n):"], params)[0]
    ids = [c.token_ids for c in first.outputs]
    assert ids == [c.token_ids for c in busy.outputs] == [c.token_ids for c in other.outputs]
    assert len({tuple(i) for i in ids}) > 1


def test_greedy_first_makes_sample_0_the_greedy_answer_and_leaves_the_others_as_sampled(tiny_qwen2_dir):
    engine = make_engine(tiny_qwen2_dir)
    sampled = SamplingParams(max_tokens=12, n=3, temperature=1.0, seed=7, ignore_eos=True)
    greedy = engine.generate(["def fib(n):"], SamplingParams(max_tokens=12, ignore_eos=True))[0]
    plain = engine.generate(["def fib(n):"], sampled)[0]
    mixed = engine.generate(["def fib(n):"], dataclasses.replace(sampled, greedy_first=True))[0]
    assert mixed.outputs[0].token_ids == greedy.outputs[0].token_ids != plain.outputs[0].token_ids
    assert [c.token_ids for c in mixed.outputs[1:]] == [c.token_ids for c in plain.outputs[1:]]


def test_streaming_deltas_concatenate_to_the_final_text(tiny_qwen2_dir):
    engine = make_engine(tiny_qwen2_dir)
    rid = engine.add_request(PROMPTS[3], SamplingParams(max_tokens=30, ignore_eos=True))
    outs = []
    while engine.has_unfinished():
        outs += engine.step()
    assert outs[-1].request_id == rid and outs[-1].finished
    assert "".join(o.outputs[0].delta_text for o in outs) == outs[-1].outputs[0].text
    assert outs[-1].outputs[0].text == engine.tokenizer.decode(outs[-1].outputs[0].token_ids,
                                                               skip_special_tokens=True)


def test_from_config_sizes_the_cache_from_free_memory(tiny_qwen2_dir):
    config = EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", max_num_seqs=4,
                          cache=CacheConfig(kv_cache_fraction=0.01))
    engine = Engine.from_config(config)
    assert engine.num_blocks == 4 * -(-engine.max_model_len // 16)  # capped: every sequence at full length
    assert engine.runner.num_blocks == engine.num_blocks
    assert engine.generate("def f():", SamplingParams(max_tokens=4))[0].finished


def test_a_step_stopped_between_layers_leaves_no_trace(tiny_qwen2_dir):
    """An abort that arrives while a prompt runs through the model ends the step at the next layer: the
    request ends ABORT, every block is free, none of its half-written KV is ever served from the prefix
    cache, and the same prompt then generates exactly what a fresh engine generates."""
    from inference.request import FinishReason

    params = SamplingParams(max_tokens=12, ignore_eos=True)
    head = PROMPTS[3] * 3
    prompt = head + "\n        self.items.append(x)"
    expected = make_engine(tiny_qwen2_dir).generate([prompt], params)[0].outputs[0].token_ids
    engine = make_engine(tiny_qwen2_dir, budget=64)
    engine.generate([head], params)  # typing: the head is cached, the step computes the changed tail
    hook = engine.runner.model.layers[0].register_forward_pre_hook(lambda *_: engine.request_stop("stale"))
    try:
        engine.add_request(prompt, params, request_id="stale")
        outputs = engine.step()  # layer 0 wrote K/V for the prompt's first chunk, then the step stopped
    finally:
        hook.remove()
    assert [o.outputs[0].finish_reason for o in outputs] == [FinishReason.ABORT]
    stats = engine.stats()
    assert stats.num_interrupted_steps == 1 and stats.num_blocks_owned == 0 and not engine.has_unfinished()
    cached_before = stats.num_blocks_cached
    again = engine.generate([prompt], params)[0]
    assert again.outputs[0].token_ids == expected
    assert again.num_cached_tokens <= len(engine.tokenizer.encode(head))
    assert engine.stats().num_blocks_cached > cached_before  # the completed run's blocks are cached now
