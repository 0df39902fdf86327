"""Generated rows' attention through our paged kernel (``inference.kernels.paged_decode_attention``) and its
measured choice (``inference/attention/cpu_decode.py``): the numbers of gathered K/V through SDPA for every
cache dtype, one set of bits per row whatever rides with it, keys past a row's length unread, refused inputs,
and greedy decoding through an engine."""

from __future__ import annotations

import pytest
import torch

from inference import kernels, tuning
from inference.attention import cpu_decode
from inference.attention.metadata import LayerKVCache
from inference.attention.paged_kv import sdpa_decode
from inference.kv_cache.quant import SCALE_DTYPE, quantize_kv

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="no AVX2 / AVX-512 library here (or no compiler)")
BLOCK = 16


def make_cache(num_blocks: int, kv_heads: int, d: int, dtype: torch.dtype, seed: int = 0) -> LayerKVCache:
    g = torch.Generator().manual_seed(seed)
    k, v = (torch.randn(num_blocks, BLOCK, kv_heads, d, generator=g) * s for s in (2.0, 1.0))
    if dtype == torch.int8:
        (kq, ks), (vq, vs) = quantize_kv(k), quantize_kv(v)
        return LayerKVCache(kq, vq, ks.to(SCALE_DTYPE), vs.to(SCALE_DTYPE))
    return LayerKVCache(k.to(dtype), v.to(dtype))


def tables_for(lens: list[int], num_blocks: int, seed: int = 1) -> torch.Tensor:
    """Each row's blocks scattered over the pool, padded to the longest row's table."""
    g = torch.Generator().manual_seed(seed)
    width = -(-max(lens) // BLOCK)
    return torch.stack([torch.randperm(num_blocks, generator=g)[:width] for _ in lens]).to(torch.int32)


def reference(q: torch.Tensor, cache: LayerKVCache, tables: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    mask = (torch.arange(tables.shape[1] * BLOCK)[None] < lens[:, None])[:, None, None, :]
    return sdpa_decode(q, cache, tables, mask, q.shape[-1] ** -0.5)


@needs_kernel
@pytest.mark.parametrize("kv_dtype", [torch.float32, torch.bfloat16, torch.float16, torch.int8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("heads", "kv_heads", "d"), [(12, 2, 128), (14, 2, 64), (4, 4, 8), (9, 3, 40), (18, 1, 16)])
def test_matches_gathered_kv_through_sdpa(kv_dtype, dtype, heads, kv_heads, d):
    cache = make_cache(48, kv_heads, d, kv_dtype)
    lens = [1, 255, 256, 257, 600]  # one key; one part and two parts at the boundary; three parts
    tables = tables_for(lens, 48)
    lens_t = torch.tensor(lens, dtype=torch.int32)
    q = torch.randn(len(lens), heads, d, generator=torch.Generator().manual_seed(2)).to(dtype)
    ours = cpu_decode.attend(q, cache, tables, lens_t, d**-0.5)
    theirs = reference(q, cache, tables, lens_t)
    assert ours.dtype == dtype and ours.shape == q.shape
    tol = 2e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(ours.float(), theirs.float(), atol=tol, rtol=tol)


@needs_kernel
def test_a_row_gets_the_same_bits_alone_batched_and_at_any_thread_count():
    cache = make_cache(64, 2, 64, torch.bfloat16)
    lens = [300, 17, 700, 256, 1]
    tables = tables_for(lens, 64)
    lens_t = torch.tensor(lens, dtype=torch.int32)
    q = torch.randn(len(lens), 14, 64)
    threads = torch.get_num_threads()
    try:
        batched = cpu_decode.attend(q, cache, tables, lens_t, 0.125)
        torch.set_num_threads(1)
        one_thread = cpu_decode.attend(q, cache, tables, lens_t, 0.125)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(batched, one_thread)
    for r in range(len(lens)):  # alone, with a table only as wide as its own
        width = -(-lens[r] // BLOCK)
        alone = cpu_decode.attend(q[r : r + 1], cache, tables[r : r + 1, :width], lens_t[r : r + 1], 0.125)
        assert torch.equal(alone[0], batched[r])


@needs_kernel
def test_keys_past_a_rows_length_are_never_read():
    cache = make_cache(8, 2, 32, torch.float32)
    lens = torch.tensor([20], dtype=torch.int32)
    tables = torch.tensor([[3, 5]], dtype=torch.int32)
    q = torch.randn(1, 4, 32)
    before = cpu_decode.attend(q, cache, tables, lens, 0.2)
    cache.k[5, 4:] = float("nan")  # block 5 holds keys 16..31: 20 onwards are past the row
    cache.v[5, 4:] = float("inf")
    cache.k[0] = float("nan")  # a block not in the table
    after = cpu_decode.attend(q, cache, tables, lens, 0.2)
    assert torch.equal(before, after) and after.isfinite().all()


@needs_kernel
def test_refused_inputs_say_why():
    cache = make_cache(4, 2, 32, torch.float32)
    q, tables, lens = torch.randn(1, 4, 32), torch.tensor([[0, 1]], dtype=torch.int32), torch.tensor([20])
    with pytest.raises(RuntimeError, match="does not fit its table"):
        cpu_decode.attend(q, cache, tables, torch.tensor([40]), 1.0)
    with pytest.raises(RuntimeError, match="does not fit its table"):
        cpu_decode.attend(q, cache, tables, torch.tensor([0]), 1.0)
    with pytest.raises(RuntimeError, match="heads over"):
        cpu_decode.attend(torch.randn(1, 3, 32), cache, tables, lens, 1.0)
    with pytest.raises(RuntimeError, match="head dim"):
        cpu_decode.attend(torch.randn(1, 4, 16), cache, tables, lens, 1.0)
    with pytest.raises(RuntimeError, match="for R rows"):
        cpu_decode.attend(torch.randn(2, 4, 32), cache, tables, lens, 1.0)
    with pytest.raises(RuntimeError, match="scales go with an int8 cache"):
        cpu_decode.attend(q, LayerKVCache(cache.k.to(torch.int8), cache.v.to(torch.int8)), tables, lens, 1.0)
    assert cpu_decode.attend(q[:0], cache, tables[:0], lens[:0], 1.0).shape == (0, 4, 32)


def test_sdpa_wherever_the_kernel_cannot_run(monkeypatch):
    cpu = torch.device("cpu")
    f32 = torch.float32
    assert cpu_decode.choose(12, 2, 128, f32, f32, torch.device("meta")) == "sdpa"
    assert cpu_decode.choose(12, 2, 12, f32, f32, cpu, "native") == "sdpa"  # head dim not a multiple of 8
    assert cpu_decode.choose(12, 5, 128, f32, f32, cpu) == "sdpa"
    assert cpu_decode.choose(12, 2, 128, torch.float64, f32, cpu) == "sdpa"
    assert cpu_decode.choose(12, 2, 128, f32, f32, cpu, "sdpa") == "sdpa"
    monkeypatch.setattr(kernels, "available", lambda: False)
    assert cpu_decode.choose(12, 2, 128, f32, f32, cpu, "native") == "sdpa"


@needs_kernel
def test_the_choice_is_measured_once_per_shape_and_cache_dtype(monkeypatch, tmp_path):
    monkeypatch.setenv("CODELOOP_AUTOTUNE_DIR", str(tmp_path))
    monkeypatch.delenv("CODELOOP_AUTOTUNE", raising=False)
    calls = []
    monkeypatch.setattr(cpu_decode, "measure", lambda *a: calls.append(a) or {"native": 1.0, "sdpa": 2.0})
    cpu, f32, bf16 = torch.device("cpu"), torch.float32, torch.bfloat16
    assert cpu_decode.choose(12, 2, 128, f32, bf16, cpu) == "native"
    assert cpu_decode.choose(12, 2, 128, f32, bf16, cpu) == "native" and len(calls) == 1
    monkeypatch.setattr(cpu_decode, "measure", lambda *a: calls.append(a) or {"native": 3.0, "sdpa": 2.0})
    assert cpu_decode.choose(12, 2, 128, f32, torch.int8, cpu) == "sdpa" and len(calls) == 2  # another cache
    assert cpu_decode.choose(12, 2, 128, f32, bf16, cpu, "native") == "native" and len(calls) == 2  # asked
    monkeypatch.setattr(tuning, "cpu_model", lambda: "Another CPU")  # a cache from another CPU is not used
    assert cpu_decode.choose(12, 2, 128, f32, bf16, cpu) == "sdpa" and len(calls) == 3


@needs_kernel
@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, torch.int8])
def test_measure_times_both_kernels(kv_dtype):
    table = cpu_decode.measure(4, 2, 32, torch.float32, kv_dtype, tokens=64)
    assert set(table) == {"native", "sdpa"} and all(ms > 0 for ms in table.values())


@needs_kernel
@pytest.mark.parametrize("kv", ["auto", "int8"])
def test_engine_decodes_the_same_tokens_through_either_kernel(tmp_path_factory, kv):
    """float32 tiny model, eager steps: the kernel and SDPA agree to float rounding, so greedy tokens agree;
    n-gram drafts under verification give the tokens plain decoding gives."""
    from inference.config import CacheConfig, EngineConfig, SpeculativeConfig
    from inference.engine import Engine
    from inference.models.tiny import make_tiny_model
    from inference.sampling import SamplingParams

    model = make_tiny_model(tmp_path_factory.mktemp(f"tiny-decode-{kv}"), arch="qwen2", seed=4, hidden_size=192,
                            num_attention_heads=6, num_key_value_heads=2)

    def engine(attention: str, method: str = "none") -> Engine:
        return Engine(EngineConfig(model=str(model), dtype="float32", compile_decode="off", decode_attention=attention,
                                   cache=CacheConfig(block_size=4, kv_cache_dtype=kv),
                                   speculative=SpeculativeConfig(method=method, ngram_min=1, ngram_max=3,
                                                                 adaptive=False)))

    native, sdpa, spec = engine("native"), engine("sdpa"), engine("native", "ngram")
    assert native.runner.kernel_report()["generated_attention"] == "native"
    assert sdpa.runner.kernel_report()["generated_attention"] == "sdpa"
    prompts = [[5, 6, 7, 8, 9] * 6, list(range(3, 40)), list(range(40, 52)) * 3]
    params = SamplingParams(max_tokens=30)
    ours = [list(o.outputs[0].token_ids) for o in native.generate(prompts, params)]
    assert ours == [list(o.outputs[0].token_ids) for o in sdpa.generate(prompts, params)]
    assert ours == [list(spec.generate([p], params)[0].outputs[0].token_ids) for p in prompts]
    assert spec.stats().num_accepted_tokens > 0


def test_decode_attention_is_a_checked_engine_setting():
    from inference.config import EngineConfig

    with pytest.raises(ValueError, match="decode_attention must be one of"):
        EngineConfig(model="x", decode_attention="flash")
