"""The "triton" backend behind the attention interface: same outputs as the SDPA reference backend."""

from __future__ import annotations

import pytest
import torch

from tests.inference import triton_interp_setup  # sets TRITON_INTERPRET first; skips without triton

DEVICE = triton_interp_setup.DEVICE

from inference.attention import BackendUnavailable, get_backend  # noqa: E402
from inference.attention.metadata import AttentionMetadata, LayerKVCache  # noqa: E402
from inference.attention.sdpa import SdpaAttention  # noqa: E402
from inference.attention.triton_backend import TritonAttention  # noqa: E402


def build_meta(query_lens: list[int], num_computed: list[int], tables: list[list[int]], block_size: int):
    starts, slots, seq_lens = [0], [], []
    for n, c, table in zip(query_lens, num_computed, tables, strict=True):
        starts.append(starts[-1] + n)
        seq_lens.append(n + c)
        slots.extend(table[p // block_size] * block_size + p % block_size for p in range(c, c + n))
    width = max(len(t) for t in tables)
    return AttentionMetadata(
        slot_mapping=torch.tensor(slots, dtype=torch.int64, device=DEVICE),
        query_start_loc=torch.tensor(starts, dtype=torch.int32, device=DEVICE),
        seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=DEVICE),
        block_tables=torch.tensor([t + [0] * (width - len(t)) for t in tables], dtype=torch.int32, device=DEVICE),
        query_start_loc_list=starts, query_lens_list=list(query_lens), seq_lens_list=seq_lens,
        num_computed_list=list(num_computed),
    )


def empty_cache(dtype, quant: bool, num_blocks=40, block_size=4, num_kv_heads=2, head_dim=16) -> LayerKVCache:
    shape = (num_blocks, block_size, num_kv_heads, head_dim)
    if quant:
        zeros = lambda: torch.zeros(shape, dtype=torch.int8, device=DEVICE)  # noqa: E731
        return LayerKVCache(zeros(), zeros(), torch.zeros(shape[:3], device=DEVICE), torch.zeros(shape[:3], device=DEVICE))
    return LayerKVCache(torch.zeros(shape, dtype=dtype, device=DEVICE), torch.zeros(shape, dtype=dtype, device=DEVICE))


def run_step(backend, cache, meta, q, k, v):
    backend.write_kv(cache, k, v, meta)
    return backend.forward(q, k, v, cache, meta, 0.25)


@pytest.mark.parametrize(("dtype", "quant"), [(torch.float32, False), (torch.bfloat16, False), (torch.float32, True)])
def test_steps_match_sdpa_backend(dtype, quant):
    """Prefill, then a mixed step (decodes + a chunk after cached context), then a pure-decode step."""
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(40, generator=g).tolist()
    tables = [perm[0:6], perm[6:14], perm[14:22]]
    steps = [([5, 9, 3], [0, 0, 0]), ([1, 1, 12], [5, 9, 3]), ([1, 1, 1], [6, 10, 15])]
    caches = {"sdpa": empty_cache(dtype, quant), "triton": empty_cache(dtype, quant)}
    backends = {"sdpa": SdpaAttention(), "triton": TritonAttention()}
    for query_lens, num_computed in steps:
        n = sum(query_lens)
        q = torch.randn(n, 4, 16, generator=g).to(dtype).to(DEVICE)
        kv = torch.randn(n, 4, 16, generator=g).to(dtype).to(DEVICE)
        outs = {}
        for name, backend in backends.items():
            meta = build_meta(query_lens, num_computed, tables, 4)
            outs[name] = run_step(backend, caches[name], meta, q, kv[:, :2], kv[:, 2:])
        # INT8: a chunk after cached context reads its own new K/V unquantized here, dequantized in SDPA
        tol = 2e-2 if dtype == torch.bfloat16 or quant else 1e-4
        torch.testing.assert_close(outs["triton"].float(), outs["sdpa"].float(), atol=tol, rtol=tol)
    assert torch.equal(caches["triton"].k, caches["sdpa"].k)


def test_pure_decode_plan_has_no_index_tensors():
    meta = build_meta([1, 1], [3, 7], [[0, 1], [2, 3]], 4)
    cache = empty_cache(torch.float32, False)
    q, kv = torch.randn(2, 4, 16, device=DEVICE), torch.randn(2, 2, 16, device=DEVICE)
    out = run_step(TritonAttention(num_splits=2), cache, meta, q, kv, kv)
    plan = meta.backend_state["triton"]
    assert plan.pure_decode and plan.decode_tokens is None and plan.prefill_seqs is None and plan.num_splits == 2
    expected = run_step(SdpaAttention(), cache, build_meta([1, 1], [3, 7], [[0, 1], [2, 3]], 4), q, kv, kv)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_registry_returns_triton_and_refuses_missing_flash_attn():
    assert get_backend("triton").name == "triton"
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailable, match="flash_attn"):
            get_backend("flash_attn")


@pytest.mark.slow
def test_model_runner_greedy_same_with_triton_backend(tiny_qwen2_dir):
    """Whole model on the paged runner: greedy tokens equal the SDPA backend's, dense and INT8 KV."""
    from inference.config import CacheConfig, EngineConfig
    from inference.model_runner import ModelRunner
    from tests.inference.runner_driver import generate

    def runner(backend: str, kv: str) -> ModelRunner:
        cfg = EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", attention_backend=backend,
                           cache=CacheConfig(block_size=4, kv_cache_dtype=kv))
        r = ModelRunner(cfg)
        r.allocate_kv(96)
        return r

    for kv in ("auto", "int8"):
        ref, ours = runner("sdpa", kv), runner("triton", kv)
        prompts = [ref.tokenizer(p).input_ids for p in ("def add(a, b):", "class Stack:\n    def", "for i in")]
        assert generate(ours, prompts, 6, prefill_chunk=3) == generate(ref, prompts, 6, prefill_chunk=3)
