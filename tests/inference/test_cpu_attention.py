"""Our causal prompt attention on AVX-512 BF16 (``inference.kernels.causal_attention``): its math against a
float64 reference, causality, row independence (a prompt chunk after cached tokens gets the numbers the whole
prompt gets), the shapes it refuses, the measured choice against SDPA and its cache, and prompt rows of a real
engine through it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inference import kernels, tuning
from inference.attention import cpu_prompt

needs_kernel = pytest.mark.skipif(not kernels.attention_available(),
                                  reason="no AVX-512 BF16 / VNNI or no C++ compiler here")


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """float64 causal attention, query ``i`` of ``n`` at position ``L - n + i``; layout ``[tokens, heads, d]``."""
    n, num_heads, _ = q.shape
    length, num_kv_heads, _ = k.shape
    group = num_heads // num_kv_heads
    kr = k.double().repeat_interleave(group, 1).transpose(0, 1)
    vr = v.double().repeat_interleave(group, 1).transpose(0, 1)
    s = q.double().transpose(0, 1) @ kr.transpose(1, 2) * scale
    hidden = torch.arange(length)[None, :] > (torch.arange(n)[:, None] + length - n)
    return (torch.softmax(s.masked_fill(hidden, float("-inf")), -1) @ vr).transpose(0, 1)


def qkv(n: int, length: int, heads: int, kv_heads: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return tuple((torch.randn(rows, h, d, generator=g) * 2).to(torch.bfloat16)
                 for rows, h in ((n, heads), (length, kv_heads), (length, kv_heads)))


def sdpa_error(q, k, v, scale, ref):
    n, length = q.shape[0], k.shape[0]
    mask = torch.arange(length)[None, :] <= torch.arange(n)[:, None] + length - n
    o = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None],
                                       attn_mask=mask, scale=scale, enable_gqa=True)[0].transpose(0, 1)
    return (o.double() - ref).abs().max().item()


@needs_kernel
@pytest.mark.parametrize(("n", "length", "heads", "kv_heads", "d"), [
    (1, 1, 2, 1, 32),        # one token
    (37, 37, 14, 2, 64),     # 0.5B heads: group of 7, rows not a multiple of 4, keys not of 64
    (100, 130, 12, 2, 128),  # 1.5B heads, a chunk after 30 cached tokens
    (1, 9, 4, 4, 32),        # one query after 8 cached tokens, no grouping
    (70, 200, 7, 1, 96),     # head dim not a multiple of 64
    (129, 129, 2, 2, 256),   # the largest head dim
])
def test_matches_the_reference_as_closely_as_sdpa(n, length, heads, kv_heads, d):
    q, k, v = qkv(n, length, heads, kv_heads, d)
    scale = d**-0.5
    out = kernels.causal_attention(q, k, v, scale)
    assert out.dtype == torch.bfloat16 and out.shape == q.shape and out.is_contiguous()
    ref = reference(q, k, v, scale)
    err = (out.double() - ref).abs().max().item()
    assert err <= 1.5 * sdpa_error(q, k, v, scale, ref) + 1e-3  # bf16 probabilities and output, as torch's


@needs_kernel
def test_a_prompt_chunk_after_cached_tokens_gets_the_whole_prompts_numbers():
    q, k, v = qkv(90, 90, 6, 2, 64, seed=1)
    whole = kernels.causal_attention(q, k, v, 0.125)
    for start in (1, 33, 64, 89):
        assert torch.equal(kernels.causal_attention(q[start:], k, v, 0.125), whole[start:])
    assert torch.equal(kernels.causal_attention(q[40:41], k[:41], v[:41], 0.125), whole[40:41])


@needs_kernel
def test_keys_after_a_query_do_not_change_it():
    q, k, v = qkv(80, 80, 4, 2, 32, seed=2)
    before = kernels.causal_attention(q, k, v, 0.2)
    k2, v2 = k.clone(), v.clone()
    k2[50:] = 100.0  # huge scores past position 49 would take all the weight if they leaked
    v2[50:] = -7.0
    after = kernels.causal_attention(q, k2, v2, 0.2)
    assert torch.equal(before[:50], after[:50])
    assert not torch.equal(before[50:], after[50:])


@needs_kernel
def test_strided_inputs_from_a_fused_projection():
    n, heads, kv_heads, d = 21, 4, 2, 32
    qkv_rows = torch.randn(n, (heads + 2 * kv_heads) * d).to(torch.bfloat16)
    q, k, v = qkv_rows.split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
    q, k, v = q.view(n, heads, d), k.view(n, kv_heads, d), v.view(n, kv_heads, d)
    assert not q.is_contiguous()
    out = kernels.causal_attention(q, k, v, 0.3)
    assert torch.equal(out, kernels.causal_attention(q.contiguous(), k.contiguous(), v.contiguous(), 0.3))


@needs_kernel
def test_refused_shapes_say_why():
    q, k, v = qkv(4, 4, 4, 2, 32)
    with pytest.raises(RuntimeError, match="bf16 only"):
        kernels.causal_attention(q.float(), k.float(), v.float(), 1.0)
    with pytest.raises(RuntimeError, match="head dim 48"):
        kernels.causal_attention(*qkv(4, 4, 4, 2, 48), 1.0)
    with pytest.raises(RuntimeError, match="3 heads over 2"):
        kernels.causal_attention(q[:, :3], k, v, 1.0)
    with pytest.raises(RuntimeError, match="fewer keys than queries"):
        kernels.causal_attention(q, k[:2], v[:2], 1.0)
    assert kernels.causal_attention(q[:0], k, v, 1.0).shape == (0, 4, 32)


def test_sdpa_wherever_the_kernel_cannot_run(monkeypatch):
    cpu = torch.device("cpu")
    assert cpu_prompt.choose(4, 2, 32, torch.float32, cpu) == "sdpa"
    assert cpu_prompt.choose(4, 2, 48, torch.bfloat16, cpu) == "sdpa"
    assert cpu_prompt.choose(4, 2, 32, torch.bfloat16, torch.device("meta")) == "sdpa"
    monkeypatch.setattr(kernels, "attention_available", lambda: False)
    assert cpu_prompt.choose(4, 2, 32, torch.bfloat16, cpu) == "sdpa"


@needs_kernel
def test_the_choice_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("CODELOOP_AUTOTUNE_DIR", str(tmp_path))
    monkeypatch.delenv("CODELOOP_AUTOTUNE", raising=False)
    calls = []
    monkeypatch.setattr(cpu_prompt, "measure", lambda *a: calls.append(a) or {"native": 1.0, "sdpa": 2.0})
    cpu = torch.device("cpu")
    assert cpu_prompt.choose(12, 2, 128, torch.bfloat16, cpu) == "native"
    assert cpu_prompt.choose(12, 2, 128, torch.bfloat16, cpu) == "native"
    assert len(calls) == 1  # the second load reads the cache
    monkeypatch.setattr(cpu_prompt, "measure", lambda *a: calls.append(a) or {"native": 3.0, "sdpa": 2.0})
    assert cpu_prompt.choose(14, 2, 64, torch.bfloat16, cpu) == "sdpa"  # another head shape: measured anew
    monkeypatch.setenv("CODELOOP_AUTOTUNE", "force")
    assert cpu_prompt.choose(12, 2, 128, torch.bfloat16, cpu) == "sdpa"
    assert len(calls) == 3
    monkeypatch.delenv("CODELOOP_AUTOTUNE")
    monkeypatch.setattr(tuning, "cpu_model", lambda: "Another CPU")  # a cache from another CPU is not used
    assert cpu_prompt.choose(12, 2, 128, torch.bfloat16, cpu) == "sdpa" and len(calls) == 4
    (tmp_path / "autotune.json").write_text("{not json")  # an unreadable cache is measured again, then rewritten
    assert cpu_prompt.choose(12, 2, 128, torch.bfloat16, cpu) == "sdpa" and len(calls) == 5
    assert cpu_prompt.choose(12, 2, 128, torch.bfloat16, cpu) == "sdpa" and len(calls) == 5


@needs_kernel
def test_measure_times_both_kernels():
    table = cpu_prompt.measure(4, 2, 32, tokens=64)
    assert set(table) == {"native", "sdpa"} and all(ms > 0 for ms in table.values())


@needs_kernel
def test_engine_prompts_through_the_kernel_agree_with_sdpa(tmp_path_factory):
    from inference.config import CacheConfig, EngineConfig
    from inference.engine import Engine
    from inference.models.tiny import make_tiny_model
    from inference.sampling import SamplingParams

    model = make_tiny_model(tmp_path_factory.mktemp("tiny-d32"), arch="qwen2", seed=3, hidden_size=192,
                            num_attention_heads=6, num_key_value_heads=2)  # head dim 32, group of 3
    engine = Engine(EngineConfig(model=str(model), dtype="bfloat16", compile_decode="off", prompt_attention="native",
                                 cache=CacheConfig(block_size=4, enable_prefix_caching=True)))
    assert engine.runner.kernel_report()["prompt_attention"] == "native"
    prompts = [list(range(3, 60)), list(range(3, 40)) + list(range(70, 75)), list(range(80, 91))]
    params = SamplingParams(max_tokens=1, logprobs=True)

    def run() -> list[tuple[int, float]]:  # one at a time: the second prompt runs after 37 cached tokens
        engine.reset_prefix_cache()
        outs = [engine.generate([p], params)[0].outputs[0] for p in prompts]
        return [(o.token_ids[0], o.logprobs[0]) for o in outs]

    ours = run()
    assert engine.stats().prefix_hit_tokens > 0
    engine.runner.backend.prompt_kernel = "sdpa"
    theirs = run()
    assert [t for t, _ in ours] == [t for t, _ in theirs]  # the token after each prompt
    assert all(abs(a - b) < 0.05 for (_, a), (_, b) in zip(ours, theirs, strict=True))


@needs_kernel
def test_generated_rows_through_the_kernel_give_every_token_one_set_of_numbers(tmp_path_factory):
    """Eager decoding with our kernel for generated rows too: n-gram drafts and batching give the tokens and
    logprobs plain one-at-a-time decoding gives, bit for bit."""
    from inference.config import CacheConfig, EngineConfig, SpeculativeConfig
    from inference.engine import Engine
    from inference.models.tiny import make_tiny_model
    from inference.sampling import SamplingParams

    model = make_tiny_model(tmp_path_factory.mktemp("tiny-d32-gen"), arch="qwen2", seed=5, hidden_size=192,
                            num_attention_heads=6, num_key_value_heads=2)

    def engine(method: str = "none") -> Engine:
        return Engine(EngineConfig(model=str(model), dtype="bfloat16", compile_decode="off",
                                   prompt_attention="native", cache=CacheConfig(block_size=4),
                                   speculative=SpeculativeConfig(method=method, ngram_min=1, ngram_max=3,
                                                                 adaptive=False)))

    plain, spec = engine(), engine("ngram")
    assert plain.runner.kernel_report()["generated_attention"] == "native"
    repeat = [5, 6, 7, 8, 9] * 6  # drafts find matches in their own prompt
    prompts = [repeat, list(range(3, 40)), list(range(40, 52)) * 3]
    params = SamplingParams(max_tokens=24, logprobs=True)

    def run(eng: Engine, together: bool) -> list[tuple[list[int], list[float]]]:
        eng.reset_prefix_cache()
        outs = eng.generate(prompts, params) if together else [eng.generate([p], params)[0] for p in prompts]
        return [(list(o.outputs[0].token_ids), list(o.outputs[0].logprobs)) for o in outs]

    alone = run(plain, together=False)
    assert run(plain, together=True) == alone
    assert run(spec, together=False) == alone
    assert spec.stats().num_accepted_tokens > 0


def test_asked_kernels_are_kept_where_they_can_run(monkeypatch):
    def no_measurement(*a):
        raise AssertionError("an asked kernel is not measured")

    monkeypatch.setattr(cpu_prompt, "measure", no_measurement)
    cpu = torch.device("cpu")
    assert cpu_prompt.choose(12, 2, 128, torch.bfloat16, cpu, "sdpa") == "sdpa"
    assert cpu_prompt.choose(12, 2, 48, torch.bfloat16, cpu, "native") == "sdpa"  # a head dim it does not take
    if kernels.attention_available():
        assert cpu_prompt.choose(12, 2, 128, torch.bfloat16, cpu, "native") == "native"


def test_prompt_attention_is_a_checked_engine_setting():
    from inference.config import EngineConfig

    with pytest.raises(ValueError, match="prompt_attention must be one of"):
        EngineConfig(model="x", prompt_attention="flash")
    assert EngineConfig(model="x", prompt_attention="sdpa").prompt_attention == "sdpa"
