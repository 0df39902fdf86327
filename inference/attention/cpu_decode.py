"""Which kernel runs generated rows' attention on CPU: our paged kernel or gather + SDPA, by measurement.

A decode step's attention through torch gathers each row's KV blocks into a padded copy (widening bf16 or
dequantizing int8), builds a mask and calls SDPA: ~160 us per layer for one 330-token row of the 1.5B on a Zen 3
core pair, ~5 ms of a ~41 ms step. ``inference/kernels/paged_attention.cpp`` reads K/V in place (31 us). Where
the kernel can run, the first load of a head shape and cache dtype on a CPU times both on one 512-token row and
keeps the faster, cached like the prompt attention's choice (``inference/attention/cpu_prompt.py``). Without
the library (no AVX2, no compiler, ``CODELOOP_NATIVE_KERNELS=off``), a head dim that is not a multiple of 8, or
off CPU: SDPA.
"""

from __future__ import annotations

import logging

import torch

from inference.attention.metadata import LayerKVCache
from inference.attention.paged_kv import sdpa_decode
from inference.kv_cache.quant import SCALE_DTYPE, quantize_kv
from inference.tuning import choose_measured, median_ms

log = logging.getLogger(__name__)
NATIVE, SDPA = "native", "sdpa"
TUNE_TOKENS = 512
REPEATS = 5
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def supported(num_heads: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype, kv_dtype: torch.dtype,
              device: torch.device) -> bool:
    """Whether our kernel takes this head shape, compute dtype and cache dtype here (and is built)."""
    if device.type != "cpu" or head_dim % 8 or dtype not in DTYPES or kv_dtype not in (*DTYPES, torch.int8):
        return False
    if num_kv_heads < 1 or num_heads % num_kv_heads:
        return False
    from inference import kernels

    return kernels.available()


def choose(num_heads: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype, kv_dtype: torch.dtype,
           device: torch.device, asked: str = "auto") -> str:
    """``NATIVE`` or ``SDPA`` for generated rows: ``asked`` where it can run, else for "auto" a cached
    measurement (``CODELOOP_AUTOTUNE=force`` re-measures)."""
    if asked == SDPA:
        return SDPA
    if not supported(num_heads, num_kv_heads, head_dim, dtype, kv_dtype, device):
        if asked == NATIVE:
            log.info("kernels: decode attention stays SDPA (our kernel needs the native library on CPU and a "
                     "head dim that is a multiple of 8; here head dim %d, %s over a %s cache)", head_dim, dtype,
                     kv_dtype)
        return SDPA
    if asked == NATIVE:
        return NATIVE
    shape = f"{num_heads}x{num_kv_heads}x{head_dim}|{dtype}|{kv_dtype}"
    return choose_measured("decode attention", shape,
                           lambda: measure(num_heads, num_kv_heads, head_dim, dtype, kv_dtype), TUNE_TOKENS)


@torch.inference_mode()
def measure(num_heads: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype, kv_dtype: torch.dtype,
            tokens: int = TUNE_TOKENS) -> dict[str, float]:
    """Median milliseconds of one row over ``tokens`` cached keys through each kernel."""
    block_size, blocks = 16, -(-tokens // 16)
    shape = (blocks * 2, block_size, num_kv_heads, head_dim)  # a pool twice the row: its blocks scattered
    if kv_dtype == torch.int8:
        (k, ks), (v, vs) = quantize_kv(torch.randn(shape)), quantize_kv(torch.randn(shape))
        cache = LayerKVCache(k, v, ks.to(SCALE_DTYPE), vs.to(SCALE_DTYPE))
    else:
        cache = LayerKVCache(torch.randn(shape).to(kv_dtype), torch.randn(shape).to(kv_dtype))
    tables = torch.randperm(blocks * 2)[:blocks].to(torch.int32).unsqueeze(0)
    lens = torch.tensor([tokens], dtype=torch.int32)
    mask = (torch.arange(blocks * block_size) < tokens)[None, None, None, :]
    q = torch.randn(1, num_heads, head_dim).to(dtype)
    scale = head_dim**-0.5
    runs = {NATIVE: lambda: attend(q, cache, tables, lens, scale),
            SDPA: lambda: sdpa_decode(q, cache, tables, mask, scale)}
    return {name: round(median_ms(run, REPEATS), 4) for name, run in runs.items()}


def attend(q: torch.Tensor, cache: LayerKVCache, tables: torch.Tensor, lens: torch.Tensor,
           scale: float) -> torch.Tensor:
    """Our kernel: one query per row ``q [R, H, d]`` over its first ``lens[r]`` keys in blocks ``tables[r]``."""
    from inference import kernels

    return kernels.paged_decode_attention(q, cache.k, cache.v, cache.k_scale, cache.v_scale, tables, lens, scale)
