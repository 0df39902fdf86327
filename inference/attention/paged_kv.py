"""The paged KV cache read and written through torch ops: new K/V stored at their slots (quantized for an int8
cache), whole block tables gathered into contiguous K/V, and one query per row over its gathered K/V through
SDPA (the reference every attention backend's decode is checked against, and the CPU's fallback)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inference.attention.metadata import LayerKVCache
from inference.kv_cache.quant import dequantize_kv, quantize_kv


def write_kv(cache: LayerKVCache, k: torch.Tensor, v: torch.Tensor, slot_mapping: torch.Tensor) -> None:
    """Store new ``k``/``v`` ``[num_tokens, num_kv_heads, head_dim]`` at ``slot_mapping`` (quantizing for int8)."""
    num_kv_heads, head_dim = k.shape[1], k.shape[2]
    k_flat = cache.k.view(-1, num_kv_heads, head_dim)
    v_flat = cache.v.view(-1, num_kv_heads, head_dim)
    if not cache.quantized:
        k_flat.index_copy_(0, slot_mapping, k.to(cache.k.dtype))
        v_flat.index_copy_(0, slot_mapping, v.to(cache.v.dtype))
        return
    kq, ks = quantize_kv(k)
    vq, vs = quantize_kv(v)
    k_flat.index_copy_(0, slot_mapping, kq)
    v_flat.index_copy_(0, slot_mapping, vq)
    cache.k_scale.view(-1, num_kv_heads).index_copy_(0, slot_mapping, ks.to(cache.k_scale.dtype))
    cache.v_scale.view(-1, num_kv_heads).index_copy_(0, slot_mapping, vs.to(cache.v_scale.dtype))


def gather_kv(
    cache: LayerKVCache, block_tables: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """K/V of whole block tables ``[num_seqs, num_blocks]`` as ``[num_seqs, num_blocks * block_size, kvh, d]``."""
    num_seqs, num_blocks = block_tables.shape
    flat = block_tables.reshape(-1)  # index_select: the same copy as ``cache.k[block_tables]``, 3x cheaper

    def rows(t: torch.Tensor) -> torch.Tensor:  # [num_seqs, num_blocks, block_size, ...]
        return t.index_select(0, flat).view(num_seqs, num_blocks, *t.shape[1:])

    k, v = rows(cache.k), rows(cache.v)
    if cache.quantized:
        k = dequantize_kv(k, rows(cache.k_scale), dtype)
        v = dequantize_kv(v, rows(cache.v_scale), dtype)
    elif k.dtype != dtype:  # 16-bit storage under float32 compute
        k, v = k.to(dtype), v.to(dtype)
    shape = (num_seqs, num_blocks * cache.block_size, k.shape[-2], k.shape[-1])
    return k.reshape(shape), v.reshape(shape)


def sdpa_decode(q: torch.Tensor, cache: LayerKVCache, tables: torch.Tensor, mask: torch.Tensor,
                scale: float) -> torch.Tensor:
    """One query per row ``q [R, H, d]`` over its blocks ``tables [R, n]`` (gathered) through SDPA;
    ``mask [R, 1, 1, n * block_size]``: the keys each row sees."""
    k, v = gather_kv(cache, tables, q.dtype)  # [R, L, kvh, d]
    num_rows, num_heads, head_dim = q.shape
    num_kv_heads = k.shape[2]
    qd = q.reshape(num_rows, num_kv_heads, num_heads // num_kv_heads, head_dim)  # group heads per KV head
    o = F.scaled_dot_product_attention(qd, k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask, scale=scale)
    return o.reshape(num_rows, num_heads, head_dim)
