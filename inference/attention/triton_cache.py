"""Fused KV cache write: store new K/V at their slots, quantizing to INT8 with per-token-per-head scales.

One program per new token writes all of its KV heads for K and V. Numerics match
:func:`inference.kv_cache.quant.quantize_kv` bit for bit: IEEE division (``div_rn``) and
round-half-to-even, so the int8 values and fp32 scales are identical to the torch reference.
A negative slot (padding, e.g. the unused rows of a CUDA-graph bucket) is skipped.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from inference.attention.metadata import LayerKVCache

INT8_MAX = 127.0


@triton.jit
def round_half_even(x):
    """Round fp32 ``x`` to the nearest integer, ties to even (``torch.round``); exact for |x| < 2**23."""
    r = tl.floor(x)
    frac = x - r  # exact
    odd = (r - 2.0 * tl.floor(r * 0.5)) == 1.0
    up = (frac > 0.5) | ((frac == 0.5) & odd)
    return tl.where(up, r + 1.0, r)


@triton.jit
def quantize_rows(x):
    """Symmetric int8 quantization of each row of fp32 ``x`` ``[R, D]``: ``(q int8 [R, D], scale fp32 [R])``."""
    amax = tl.max(tl.abs(x), axis=1)
    scale = tl.math.div_rn(amax, tl.full(amax.shape, 127.0, tl.float32))
    safe = tl.where(scale > 0.0, scale, 1.0)
    y = tl.math.div_rn(x, tl.broadcast_to(safe[:, None], x.shape))
    q = tl.minimum(tl.maximum(round_half_even(y), -127.0), 127.0)
    return q.to(tl.int8), scale


@triton.jit
def _store_one(src_ptr, stride_t, stride_h, tok, slot, cache_ptr, scale_ptr, num_kv_heads, head_dim,
               QUANT: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    h = tl.arange(0, BLOCK_H)
    d = tl.arange(0, BLOCK_D)
    hmask = (h < num_kv_heads) & (slot >= 0)
    mask = hmask[:, None] & (d[None, :] < head_dim)
    x = tl.load(src_ptr + tok * stride_t + h[:, None] * stride_h + d[None, :], mask=mask, other=0.0)
    dst = (slot * num_kv_heads + h[:, None]) * head_dim + d[None, :]  # int64 offsets into the flat cache
    if QUANT:
        q, scale = quantize_rows(x.to(tl.float32))
        tl.store(cache_ptr + dst, q, mask=mask)
        tl.store(scale_ptr + slot * num_kv_heads + h, scale, mask=hmask)
    else:
        tl.store(cache_ptr + dst, x.to(cache_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _write_kv_kernel(k_ptr, v_ptr, k_cache_ptr, v_cache_ptr, k_scale_ptr, v_scale_ptr, slot_ptr,
                     stride_kt, stride_kh, stride_vt, stride_vh, num_kv_heads, head_dim,
                     QUANT: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    tok = tl.program_id(0)
    slot = tl.load(slot_ptr + tok).to(tl.int64)
    _store_one(k_ptr, stride_kt, stride_kh, tok, slot, k_cache_ptr, k_scale_ptr, num_kv_heads, head_dim,
               QUANT, BLOCK_H, BLOCK_D)
    _store_one(v_ptr, stride_vt, stride_vh, tok, slot, v_cache_ptr, v_scale_ptr, num_kv_heads, head_dim,
               QUANT, BLOCK_H, BLOCK_D)


def write_kv(cache: LayerKVCache, k: torch.Tensor, v: torch.Tensor, slot_mapping: torch.Tensor) -> None:
    """Store ``k``/``v`` ``[num_tokens, num_kv_heads, head_dim]`` at ``slot_mapping`` ``[num_tokens]``.

    Slots index the flattened ``[num_blocks * block_size]`` cache; negative slots are skipped.
    The caches must be contiguous; ``k``/``v`` may be strided views with a contiguous last dim.
    """
    num_tokens, num_kv_heads, head_dim = k.shape
    if num_tokens == 0:
        return
    if not (cache.k.is_contiguous() and cache.v.is_contiguous()):
        raise ValueError("KV cache tensors must be contiguous")
    if tuple(cache.k.shape[2:]) != (num_kv_heads, head_dim) or v.shape != k.shape:
        raise ValueError(f"K/V {tuple(k.shape)} / {tuple(v.shape)} do not fit cache {tuple(cache.k.shape)}")
    k = k if k.stride(-1) == 1 else k.contiguous()
    v = v if v.stride(-1) == 1 else v.contiguous()
    scale_k = cache.k_scale if cache.quantized else cache.k  # unused pointer when not quantized
    scale_v = cache.v_scale if cache.quantized else cache.v
    _write_kv_kernel[(num_tokens,)](
        k, v, cache.k, cache.v, scale_k, scale_v, slot_mapping,
        k.stride(0), k.stride(1), v.stride(0), v.stride(1), num_kv_heads, head_dim,
        QUANT=cache.quantized,
        BLOCK_H=triton.next_power_of_2(num_kv_heads),
        BLOCK_D=triton.next_power_of_2(head_dim),
    )
