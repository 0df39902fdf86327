"""Paged decode attention: one query token per sequence, K/V read through the block table.

Grid ``(num_entries, num_kv_heads, num_splits)``. Each program serves every query head of one KV head
(GQA: the group is padded to 16 rows so the score product is a tensor-core ``tl.dot``), walks its slice
of the context with an online softmax (base 2), and either writes the output directly (one split) or a
partial output plus its log-sum-exp for :func:`_reduce_kernel` (split-K over long contexts).

INT8 KV is dequantized inside the loop without widening the cache: ``q·(k_q·s_k) = (q·k_q)·s_k`` and
``Σ p·(v_q·s_v) = Σ (p·s_v)·v_q``, so the int8 values feed the dot products and the per-token scales
multiply the scores / probabilities. Split boundaries are computed in the kernel from ``seq_lens``, so
the launch depends on no per-step host value (CUDA-graph friendly). A sequence of length 0 yields zeros.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from inference.attention.metadata import LayerKVCache

LOG2E = 1.4426950408889634
MIN_GROUP_ROWS = 16  # tl.dot needs M >= 16 on NVIDIA tensor cores


@triton.jit
def _decode_kernel(
    q_ptr, k_cache_ptr, v_cache_ptr, k_scale_ptr, v_scale_ptr, block_tables_ptr, seq_lens_ptr,
    token_idx_ptr, seq_idx_ptr, out_ptr, part_out_ptr, part_lse_ptr,
    qk_scale, stride_qt, stride_qh, stride_ot, stride_oh, stride_bt, num_kv_heads, group, head_dim,
    HAS_INDEX: tl.constexpr, QUANT: tl.constexpr, NUM_SPLITS: tl.constexpr, BLOCK_SIZE: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    entry = tl.program_id(0)
    kvh = tl.program_id(1)
    split = tl.program_id(2)
    if HAS_INDEX:
        tok = tl.load(token_idx_ptr + entry).to(tl.int64)
        seq = tl.load(seq_idx_ptr + entry).to(tl.int64)
    else:
        tok = entry.to(tl.int64)
        seq = entry.to(tl.int64)
    seq_len = tl.load(seq_lens_ptr + seq)
    per_split = tl.cdiv(tl.cdiv(seq_len, NUM_SPLITS), BLOCK_N) * BLOCK_N
    start = split * per_split
    end = tl.minimum(start + per_split, seq_len)

    h = tl.arange(0, BLOCK_H)
    d = tl.arange(0, BLOCK_D)
    head = kvh * group + h
    hmask = h < group
    dmask = d < head_dim
    q = tl.load(q_ptr + tok * stride_qt + head[:, None] * stride_qh + d[None, :],
                mask=hmask[:, None] & dmask[None, :], other=0.0)  # [BLOCK_H, BLOCK_D]

    m_i = tl.full([BLOCK_H], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_H], tl.float32)
    acc = tl.zeros([BLOCK_H, BLOCK_D], tl.float32)
    for n0 in range(start, end, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        nmask = n < end
        block = tl.load(block_tables_ptr + seq * stride_bt + n // BLOCK_SIZE, mask=nmask, other=0).to(tl.int64)
        slot = block * BLOCK_SIZE + n % BLOCK_SIZE  # [BLOCK_N]
        kv_off = (slot * num_kv_heads + kvh)[:, None] * head_dim + d[None, :]
        kv_mask = nmask[:, None] & dmask[None, :]
        k = tl.load(k_cache_ptr + kv_off, mask=kv_mask, other=0).to(q.dtype)  # [BLOCK_N, BLOCK_D]
        s = tl.dot(q, tl.trans(k), input_precision="ieee")  # [BLOCK_H, BLOCK_N]
        if QUANT:
            s = s * tl.load(k_scale_ptr + slot * num_kv_heads + kvh, mask=nmask, other=0.0).to(tl.float32)[None, :]
        s = tl.where(nmask[None, :], s * qk_scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        p = tl.exp2(s - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_cache_ptr + kv_off, mask=kv_mask, other=0).to(q.dtype)
        if QUANT:
            p = p * tl.load(v_scale_ptr + slot * num_kv_heads + kvh, mask=nmask, other=0.0).to(tl.float32)[None, :]
        acc = acc * alpha[:, None] + tl.dot(p.to(q.dtype), v, input_precision="ieee")
        m_i = m_new

    safe_l = tl.where(l_i > 0.0, l_i, 1.0)
    o = acc / safe_l[:, None]
    omask = hmask[:, None] & dmask[None, :]
    if NUM_SPLITS == 1:
        tl.store(out_ptr + tok * stride_ot + head[:, None] * stride_oh + d[None, :],
                 o.to(out_ptr.dtype.element_ty), mask=omask)
    else:
        num_heads = num_kv_heads * group
        row = (entry * num_heads + head) * NUM_SPLITS + split  # [BLOCK_H]
        tl.store(part_out_ptr + row[:, None] * head_dim + d[None, :], o, mask=omask)
        lse = tl.where(l_i > 0.0, m_i + tl.log2(safe_l), float("-inf"))
        tl.store(part_lse_ptr + row, lse, mask=hmask)


@triton.jit
def _reduce_kernel(
    part_out_ptr, part_lse_ptr, token_idx_ptr, out_ptr, stride_ot, stride_oh, head_dim,
    HAS_INDEX: tl.constexpr, NUM_SPLITS: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr,
):
    entry = tl.program_id(0)
    head = tl.program_id(1)
    num_heads = tl.num_programs(1)
    if HAS_INDEX:
        tok = tl.load(token_idx_ptr + entry).to(tl.int64)
    else:
        tok = entry.to(tl.int64)
    s = tl.arange(0, BLOCK_S)
    d = tl.arange(0, BLOCK_D)
    smask = s < NUM_SPLITS
    row = (entry.to(tl.int64) * num_heads + head) * NUM_SPLITS + s
    lse = tl.load(part_lse_ptr + row, mask=smask, other=float("-inf"))
    m = tl.max(lse, axis=0)
    m = tl.where(m == float("-inf"), 0.0, m)
    w = tl.exp2(lse - m)  # [BLOCK_S]; empty splits weigh 0
    parts = tl.load(part_out_ptr + row[:, None] * head_dim + d[None, :],
                    mask=smask[:, None] & (d[None, :] < head_dim), other=0.0)
    total = tl.sum(w, axis=0)
    o = tl.sum(parts * w[:, None], axis=0) / tl.where(total > 0.0, total, 1.0)
    tl.store(out_ptr + tok * stride_ot + head * stride_oh + d, o.to(out_ptr.dtype.element_ty), mask=d < head_dim)


def choose_num_splits(max_seq_len: int, num_entries: int, num_kv_heads: int, target_programs: int = 264) -> int:
    """Splits per sequence so about ``target_programs`` programs run, each over >= 256 context tokens."""
    if max_seq_len <= 256:
        return 1
    want = -(-target_programs // max(1, num_entries * num_kv_heads))
    return max(1, min(want, -(-max_seq_len // 256), 32))


def paged_decode(
    q: torch.Tensor,
    cache: LayerKVCache,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float,
    out: torch.Tensor,
    *,
    token_idx: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    num_splits: int = 1,
    block_n: int = 64,
) -> None:
    """Decode attention into ``out`` (same shape as ``q`` ``[num_tokens, num_heads, head_dim]``).

    Without indices, entry ``i`` is query row ``i`` of sequence ``i``; with ``token_idx``/``seq_idx``
    (int tensors of one length) entry ``i`` is query row ``token_idx[i]`` of sequence ``seq_idx[i]``.
    ``seq_lens`` counts each sequence's context including the query token, whose K/V must be written.
    """
    num_heads, head_dim = q.shape[1], q.shape[2]
    num_kv_heads = cache.k.shape[2]
    num_entries = q.shape[0] if token_idx is None else token_idx.shape[0]
    if num_entries == 0:
        return
    if q.stride(-1) != 1 or out.stride(-1) != 1:
        raise ValueError("q and out need a contiguous last dimension")
    group = num_heads // num_kv_heads
    block_d = max(16, triton.next_power_of_2(head_dim))
    has_index = token_idx is not None
    part_out = part_lse = out  # placeholders when NUM_SPLITS == 1
    if num_splits > 1:
        part_out = torch.empty(num_entries, num_heads, num_splits, head_dim, dtype=torch.float32, device=q.device)
        part_lse = torch.empty(num_entries, num_heads, num_splits, dtype=torch.float32, device=q.device)
    scale_k = cache.k_scale if cache.quantized else cache.k
    scale_v = cache.v_scale if cache.quantized else cache.v
    _decode_kernel[(num_entries, num_kv_heads, num_splits)](
        q, cache.k, cache.v, scale_k, scale_v, block_tables, seq_lens,
        token_idx if has_index else seq_lens, seq_idx if has_index else seq_lens, out, part_out, part_lse,
        scale * LOG2E, q.stride(0), q.stride(1), out.stride(0), out.stride(1), block_tables.stride(0),
        num_kv_heads, group, head_dim,
        HAS_INDEX=has_index, QUANT=cache.quantized, NUM_SPLITS=num_splits, BLOCK_SIZE=cache.block_size,
        BLOCK_H=max(MIN_GROUP_ROWS, triton.next_power_of_2(group)), BLOCK_N=block_n, BLOCK_D=block_d,
    )
    if num_splits > 1:
        _reduce_kernel[(num_entries, num_heads)](
            part_out, part_lse, token_idx if has_index else seq_lens, out, out.stride(0), out.stride(1), head_dim,
            HAS_INDEX=has_index, NUM_SPLITS=num_splits, BLOCK_S=triton.next_power_of_2(num_splits),
            BLOCK_D=block_d,
        )
