"""Paged prefill / extend attention: a chunk of new tokens attends to its cached context and, causally, to itself.

Grid ``(cdiv(max_query_len, BLOCK_M), num_entries, num_heads)``. Phase 1 walks the sequence's first
``seq_len - query_len`` positions through the block table (bf16/fp16/fp32, or INT8 with the scales folded
into scores and probabilities as in :mod:`inference.attention.triton_decode`); phase 2 reads the chunk's
own K/V straight from the projection output (full precision, like the SDPA reference) under a causal
mask. Both share one online softmax in base 2.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from inference.attention.metadata import LayerKVCache

LOG2E = 1.4426950408889634


@triton.jit
def _softmax_step(s, m_i, l_i, acc, v, p_scale, HAS_P_SCALE: tl.constexpr):
    """One online-softmax update with masked scores ``s`` [M, N] (base 2) and values ``v`` [N, D]."""
    m_new = tl.maximum(m_i, tl.max(s, axis=1))
    p = tl.exp2(s - m_new[:, None])
    alpha = tl.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, axis=1)
    if HAS_P_SCALE:
        p = p * p_scale[None, :]
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
    return m_new, l_i, acc


@triton.jit
def _prefill_kernel(
    q_ptr, k_ptr, v_ptr, k_cache_ptr, v_cache_ptr, k_scale_ptr, v_scale_ptr, block_tables_ptr,
    query_start_ptr, seq_lens_ptr, seq_idx_ptr, out_ptr,
    qk_scale, stride_qt, stride_qh, stride_kt, stride_kh, stride_vt, stride_vh, stride_ot, stride_oh,
    stride_bt, num_kv_heads, group, head_dim,
    QUANT: tl.constexpr, BLOCK_SIZE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    tile = tl.program_id(0)
    seq = tl.load(seq_idx_ptr + tl.program_id(1)).to(tl.int64)
    head = tl.program_id(2)
    kvh = head // group
    q_start = tl.load(query_start_ptr + seq).to(tl.int64)
    query_len = (tl.load(query_start_ptr + seq + 1) - q_start).to(tl.int32)
    ctx_len = tl.load(seq_lens_ptr + seq) - query_len
    rows = tile * BLOCK_M + tl.arange(0, BLOCK_M)  # query index within the chunk
    d = tl.arange(0, BLOCK_D)
    rmask = rows < query_len
    dmask = d[None, :] < head_dim
    q = tl.load(q_ptr + (q_start + rows)[:, None] * stride_qt + head * stride_qh + d[None, :],
                mask=rmask[:, None] & dmask, other=0.0)  # [BLOCK_M, BLOCK_D]

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    if tile * BLOCK_M < query_len:
        for n0 in range(0, ctx_len, BLOCK_N):  # phase 1: cached context, no mask but the length
            n = n0 + tl.arange(0, BLOCK_N)
            nmask = n < ctx_len
            block = tl.load(block_tables_ptr + seq * stride_bt + n // BLOCK_SIZE, mask=nmask, other=0).to(tl.int64)
            slot = block * BLOCK_SIZE + n % BLOCK_SIZE
            kv_off = (slot * num_kv_heads + kvh)[:, None] * head_dim + d[None, :]
            k = tl.load(k_cache_ptr + kv_off, mask=nmask[:, None] & dmask, other=0).to(q.dtype)
            v = tl.load(v_cache_ptr + kv_off, mask=nmask[:, None] & dmask, other=0).to(q.dtype)
            s = tl.dot(q, tl.trans(k), input_precision="ieee")
            v_scale = tl.zeros([BLOCK_N], tl.float32)
            if QUANT:
                s = s * tl.load(k_scale_ptr + slot * num_kv_heads + kvh, mask=nmask, other=0.0).to(tl.float32)[None, :]
                v_scale = tl.load(v_scale_ptr + slot * num_kv_heads + kvh, mask=nmask, other=0.0).to(tl.float32)
            s = tl.where(nmask[None, :], s * qk_scale, float("-inf"))
            m_i, l_i, acc = _softmax_step(s, m_i, l_i, acc, v, v_scale, QUANT)
        causal_end = tl.minimum(query_len, (tile + 1) * BLOCK_M)
        for n0 in range(0, causal_end, BLOCK_N):  # phase 2: the chunk itself, causal
            n = n0 + tl.arange(0, BLOCK_N)
            nmask = n < query_len
            tok = q_start + n
            k = tl.load(k_ptr + tok[:, None] * stride_kt + kvh * stride_kh + d[None, :],
                        mask=nmask[:, None] & dmask, other=0.0).to(q.dtype)
            v = tl.load(v_ptr + tok[:, None] * stride_vt + kvh * stride_vh + d[None, :],
                        mask=nmask[:, None] & dmask, other=0.0).to(q.dtype)
            s = tl.dot(q, tl.trans(k), input_precision="ieee")
            keep = nmask[None, :] & (n[None, :] <= rows[:, None])
            s = tl.where(keep, s * qk_scale, float("-inf"))
            m_i, l_i, acc = _softmax_step(s, m_i, l_i, acc, v, l_i, False)
        o = acc / tl.where(l_i > 0.0, l_i, 1.0)[:, None]
        tl.store(out_ptr + (q_start + rows)[:, None] * stride_ot + head * stride_oh + d[None, :],
                 o.to(out_ptr.dtype.element_ty), mask=rmask[:, None] & dmask)


def paged_prefill(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cache: LayerKVCache,
    block_tables: torch.Tensor,
    query_start_loc: torch.Tensor,
    seq_lens: torch.Tensor,
    seq_idx: torch.Tensor,
    max_query_len: int,
    scale: float,
    out: torch.Tensor,
    *,
    block_m: int = 64,
    block_n: int = 64,
) -> None:
    """Causal attention for the chunks of sequences ``seq_idx`` into ``out`` (shaped like ``q``).

    ``q`` ``[num_tokens, num_heads, d]`` and ``k``/``v`` ``[num_tokens, num_kv_heads, d]`` are the flat
    batch; chunk ``i`` is rows ``query_start_loc[i]:query_start_loc[i+1]`` at the last positions of its
    ``seq_lens[i]``-long sequence, whose earlier positions are read from ``cache``.
    """
    num_entries = seq_idx.shape[0]
    if num_entries == 0 or max_query_len == 0:
        return
    for name, t in (("q", q), ("k", k), ("v", v), ("out", out)):
        if t.stride(-1) != 1:
            raise ValueError(f"{name} needs a contiguous last dimension")
    num_heads, head_dim = q.shape[1], q.shape[2]
    num_kv_heads = k.shape[1]
    scale_k = cache.k_scale if cache.quantized else cache.k
    scale_v = cache.v_scale if cache.quantized else cache.v
    grid = (triton.cdiv(max_query_len, block_m), num_entries, num_heads)
    _prefill_kernel[grid](
        q, k, v, cache.k, cache.v, scale_k, scale_v, block_tables, query_start_loc, seq_lens, seq_idx, out,
        scale * LOG2E, q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
        out.stride(0), out.stride(1), block_tables.stride(0), num_kv_heads, num_heads // num_kv_heads, head_dim,
        QUANT=cache.quantized, BLOCK_SIZE=cache.block_size, BLOCK_M=block_m, BLOCK_N=block_n,
        BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
    )
