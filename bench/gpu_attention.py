"""GPU benchmark parts that time one layer's attention kernels alone (our Triton paged kernels, INT8 KV, SDPA);
run by :mod:`bench.gpu`, each in its own process."""

from __future__ import annotations

from typing import Any

import torch

from bench.dummy_models import BLOCK_SIZE, free_memory, model_config
from inference.attention import get_backend
from inference.attention.metadata import AttentionMetadata, LayerKVCache
from inference.models.config import ModelConfig


def kv_cache(cfg: ModelConfig, num_blocks: int, int8: bool = False) -> LayerKVCache:
    """One layer's paged KV cache on the GPU (the attention parts time one layer)."""
    shape = (num_blocks, BLOCK_SIZE, cfg.num_kv_heads, cfg.head_dim)
    dtype = torch.int8 if int8 else torch.bfloat16
    scales = [torch.zeros(shape[:3], device="cuda") for _ in range(2)] if int8 else [None, None]
    return LayerKVCache(torch.zeros(shape, dtype=dtype, device="cuda"), torch.zeros(shape, dtype=dtype, device="cuda"),
                        *scales)


def cuda_time_ms(fn, repeats: int = 20) -> float:
    """Median time of ``fn()`` in milliseconds by CUDA events (after two warm-up calls)."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def _decode_meta(batch: int, ctx: int) -> AttentionMetadata:
    blocks = -(-ctx // BLOCK_SIZE)
    tables = torch.arange(batch * blocks, dtype=torch.int32, device="cuda").view(batch, blocks)
    slots = tables[:, (ctx - 1) // BLOCK_SIZE].long() * BLOCK_SIZE + (ctx - 1) % BLOCK_SIZE
    return AttentionMetadata(
        slot_mapping=slots, query_start_loc=torch.arange(batch + 1, dtype=torch.int32, device="cuda"),
        seq_lens=torch.full((batch,), ctx, dtype=torch.int32, device="cuda"), block_tables=tables,
        query_start_loc_list=list(range(batch + 1)), query_lens_list=[1] * batch, seq_lens_list=[ctx] * batch,
        num_computed_list=[ctx - 1] * batch,
    )


def part_int8_attention(shape: str = "qwen2.5-coder-7b", ctx: int = 8192, quick: bool = False) -> dict[str, Any]:
    """One layer's decode attention time at ``ctx`` context: bf16 vs INT8 KV (triton), and SDPA bf16."""
    cfg = model_config(shape)
    out: dict[str, Any] = {"shape": shape, "context": ctx}
    for batch in (1, 16) if quick else (1, 16, 64):
        blocks = batch * -(-ctx // BLOCK_SIZE)
        q = torch.randn(batch, cfg.num_heads, cfg.head_dim, device="cuda", dtype=torch.bfloat16)
        row: dict[str, float] = {}
        for name, int8, backend in (("triton_bf16", False, "triton"), ("triton_int8", True, "triton"),
                                    ("sdpa_bf16", False, "sdpa")):
            cache = kv_cache(cfg, blocks, int8)
            if int8:
                cache.k.random_(-127, 128), cache.v.random_(-127, 128)
                cache.k_scale.fill_(0.01), cache.v_scale.fill_(0.01)
            else:
                cache.k.normal_(), cache.v.normal_()
            meta, impl = _decode_meta(batch, ctx), get_backend(backend)
            row[f"{name}_ms"] = cuda_time_ms(lambda: impl.forward(q, q, q, cache, meta, 0.088))  # noqa: B023
            free_memory()
        row["int8_speedup_vs_bf16"] = row["triton_bf16_ms"] / row["triton_int8_ms"]
        out[f"batch_{batch}"] = row
    return out


def part_prefill_attention(shape: str = "qwen2.5-coder-7b", quick: bool = False) -> dict[str, Any]:
    """Causal prefill attention TFLOP/s: our paged kernel vs SDPA's math backend (and its flash backend)."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cfg = model_config(shape)
    out: dict[str, Any] = {"shape": shape}
    for n in (1024, 2048) if quick else (1024, 4096):
        h, kvh, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        q = torch.randn(n, h, d, device="cuda", dtype=torch.bfloat16)
        k, v = torch.randn(n, kvh, d, device="cuda", dtype=torch.bfloat16), torch.randn_like(q[:, :kvh])
        cache = kv_cache(cfg, -(-n // BLOCK_SIZE) + 1)
        meta = AttentionMetadata(
            slot_mapping=torch.arange(n, device="cuda"), query_start_loc=torch.tensor([0, n], device="cuda").int(),
            seq_lens=torch.tensor([n], device="cuda").int(),
            block_tables=torch.arange(-(-n // BLOCK_SIZE), device="cuda").int().view(1, -1),
            query_start_loc_list=[0, n], query_lens_list=[n], seq_lens_list=[n], num_computed_list=[0],
        )
        ours = get_backend("triton")
        flops = 4 * n * n * d * h / 2  # causal: half of QK^T and PV
        qt, kt, vt = (x.transpose(0, 1).unsqueeze(0) for x in (q, k.repeat_interleave(h // kvh, 1),
                                                               v.repeat_interleave(h // kvh, 1)))
        row = {"ours_ms": cuda_time_ms(lambda: ours.forward(q, k, v, cache, meta, d**-0.5), 10)}  # noqa: B023
        for name, backend in (("sdpa_math", SDPBackend.MATH), ("sdpa_flash", SDPBackend.FLASH_ATTENTION)):
            with sdpa_kernel(backend):
                row[f"{name}_ms"] = cuda_time_ms(
                    lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=True), 5)  # noqa: B023
        for key in [k_ for k_ in row if k_.endswith("_ms")]:
            row[key.replace("_ms", "_tflops")] = flops / (row[key] * 1e-3) / 1e12
        row["speedup_vs_math"] = row["sdpa_math_ms"] / row["ours_ms"]
        out[f"seq_{n}"] = row
        free_memory()
    return out
