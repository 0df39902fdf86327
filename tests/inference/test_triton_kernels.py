"""Triton paged-attention kernels vs plain torch references (CPU: Triton's interpreter; CUDA: compiled)."""

from __future__ import annotations

import pytest
import torch

from tests.inference import triton_interp_setup  # sets TRITON_INTERPRET first; skips without triton

DEVICE = triton_interp_setup.DEVICE

from inference.attention.metadata import LayerKVCache  # noqa: E402
from inference.attention.paged_kv import write_kv as sdpa_write_kv  # noqa: E402
from inference.attention.triton_cache import write_kv  # noqa: E402
from inference.attention.triton_decode import choose_num_splits, paged_decode  # noqa: E402
from inference.attention.triton_prefill import paged_prefill  # noqa: E402
from inference.kv_cache.quant import dequantize_kv, quantize_kv  # noqa: E402


def make_cache(num_blocks, block_size, num_kv_heads, head_dim, dtype, quant, fill=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (num_blocks, block_size, num_kv_heads, head_dim)
    k = torch.randn(shape, generator=g).to(dtype) if fill else torch.zeros(shape, dtype=dtype)
    v = torch.randn(shape, generator=g).to(dtype) if fill else torch.zeros(shape, dtype=dtype)
    if not quant:
        return LayerKVCache(k.to(DEVICE), v.to(DEVICE))
    (kq, ks), (vq, vs) = quantize_kv(k), quantize_kv(v)
    return LayerKVCache(kq.to(DEVICE), vq.to(DEVICE), ks.to(DEVICE), vs.to(DEVICE))


def dense(cache: LayerKVCache, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    if not cache.quantized:
        return cache.k.float(), cache.v.float()
    return dequantize_kv(cache.k, cache.k_scale, dtype).float(), dequantize_kv(cache.v, cache.v_scale, dtype).float()


def ref_attention(q, k_ctx, v_ctx, num_cached, scale):
    """fp32 reference: ``q`` [n, H, d] at positions num_cached.. of a context ``k_ctx``/``v_ctx`` [L, kvh, d]."""
    group = q.shape[1] // k_ctx.shape[1]
    k = k_ctx.float().repeat_interleave(group, 1)
    v = v_ctx.float().repeat_interleave(group, 1)
    s = torch.einsum("qhd,khd->hqk", q.float(), k) * scale
    rows = torch.arange(q.shape[0]).unsqueeze(1) + num_cached
    s = s.masked_fill(torch.arange(k.shape[0]).unsqueeze(0) > rows, float("-inf"))
    return torch.einsum("hqk,khd->qhd", s.softmax(-1), v)


def context(cache_k, cache_v, table, length):
    block_size = cache_k.shape[1]
    pos = torch.arange(length)
    slots = table.cpu().long()[pos // block_size] * block_size + pos % block_size
    flat = lambda t: t.cpu().reshape(-1, *t.shape[2:])  # noqa: E731
    return flat(cache_k)[slots], flat(cache_v)[slots]


TOL = {torch.float32: 1e-4, torch.bfloat16: 3e-2, torch.float16: 5e-3}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("quant", [False, True])
def test_write_kv_matches_reference_bit_for_bit(dtype, quant):
    ref = make_cache(6, 4, 2, 12, dtype, quant, fill=False)
    ours = make_cache(6, 4, 2, 12, dtype, quant, fill=False)
    kv = (torch.randn(7, 4, 12) * 3).to(dtype)
    kv[0, 0] = 0  # an all-zero row: scale 0, dequantizes to 0
    kv[1, 1, :4] = torch.tensor([0.5, 1.5, -2.5, 127.0]).to(dtype)  # exact .5 ties: round half to even
    k, v = kv[:, :2].to(DEVICE), kv[:, 2:].to(DEVICE)  # strided views, as split from a qkv projection
    slots = torch.tensor([3, 5, 0, 23, 11, 12, 7], device=DEVICE)
    sdpa_write_kv(ref, k, v, slots)
    write_kv(ours, k, v, slots)
    for a, b in zip((ours.k, ours.v, ours.k_scale, ours.v_scale), (ref.k, ref.v, ref.k_scale, ref.v_scale),
                    strict=True):
        if a is not None:
            assert torch.equal(a, b)
    if quant:
        assert ours.k_scale.view(-1, 2)[3, 0] == 0 and not ours.k.view(-1, 2, 12)[3, 0].any()


def test_write_kv_skips_negative_slots_and_rejects_bad_shapes():
    cache = make_cache(2, 4, 2, 8, torch.float32, quant=True, fill=False)
    k = torch.randn(3, 2, 8, device=DEVICE)
    write_kv(cache, k, k, torch.tensor([-1, 2, -1], device=DEVICE))
    written = (cache.k_scale.view(-1, 2) != 0).any(-1).nonzero().flatten().tolist()
    assert written == [2]
    with pytest.raises(ValueError, match="do not fit"):
        write_kv(cache, torch.randn(3, 2, 4, device=DEVICE), torch.randn(3, 2, 4, device=DEVICE),
                 torch.zeros(3, dtype=torch.int64, device=DEVICE))


@pytest.mark.parametrize(
    ("dtype", "quant", "num_heads", "num_splits"),
    [
        (torch.float32, False, 6, 1),
        (torch.float32, False, 6, 3),
        (torch.bfloat16, False, 4, 2),
        (torch.float16, False, 2, 1),
        (torch.float32, True, 6, 1),
        (torch.bfloat16, True, 6, 4),
    ],
)
def test_decode_matches_reference(dtype, quant, num_heads, num_splits):
    num_kv_heads, head_dim, block_size = 2, 16, 4
    cache = make_cache(24, block_size, num_kv_heads, head_dim, dtype, quant)
    lens = [5, 17, 1, 0, 40]  # a zero-length entry (padding) yields zeros
    g = torch.Generator().manual_seed(1)
    tables = torch.stack([torch.randperm(24, generator=g)[:10] for _ in lens]).int().to(DEVICE)
    q = torch.randn(len(lens), num_heads, head_dim, generator=g).to(dtype).to(DEVICE)
    out = torch.full_like(q, float("nan"))
    paged_decode(q, cache, tables, torch.tensor(lens, dtype=torch.int32, device=DEVICE), 0.3, out,
                 num_splits=num_splits, block_n=16)
    k_all, v_all = dense(cache, dtype)
    for i, n in enumerate(lens):
        if n == 0:
            assert not out[i].any()
            continue
        kc, vc = context(k_all, v_all, tables[i], n)
        expected = ref_attention(q[i : i + 1].cpu(), kc, vc, n - 1, 0.3)
        torch.testing.assert_close(out[i : i + 1].float().cpu(), expected, atol=TOL[dtype], rtol=TOL[dtype])


def test_decode_with_indices_writes_only_its_rows():
    cache = make_cache(8, 4, 1, 16, torch.float32, quant=False)
    tables = torch.arange(8, dtype=torch.int32, device=DEVICE).view(2, 4)
    q = torch.randn(5, 2, 16, device=DEVICE)
    out = torch.zeros_like(q)
    paged_decode(q, cache, tables, torch.tensor([9, 13], dtype=torch.int32, device=DEVICE), 0.25, out,
                 token_idx=torch.tensor([4, 1], dtype=torch.int32, device=DEVICE),
                 seq_idx=torch.tensor([0, 1], dtype=torch.int32, device=DEVICE), num_splits=2, block_n=16)
    assert not out[[0, 2, 3]].any()
    k_all, v_all = dense(cache, torch.float32)
    for row, seq, n in ((4, 0, 9), (1, 1, 13)):
        kc, vc = context(k_all, v_all, tables[seq], n)
        torch.testing.assert_close(out[row : row + 1].cpu(), ref_attention(q[row : row + 1].cpu(), kc, vc, n - 1, 0.25),
                                   atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("dtype", "quant"), [(torch.float32, False), (torch.bfloat16, False), (torch.float32, True)])
def test_prefill_and_extend_match_reference(dtype, quant):
    num_heads, num_kv_heads, head_dim, block_size = 4, 2, 16, 4
    cache = make_cache(32, block_size, num_kv_heads, head_dim, dtype, quant)
    g = torch.Generator().manual_seed(2)
    query_lens, cached = [7, 20, 3], [0, 9, 22]  # a fresh prompt, two chunks after cached context
    seq_lens = [q + c for q, c in zip(query_lens, cached, strict=True)]
    tables = torch.stack([torch.randperm(32, generator=g)[:8] for _ in seq_lens]).int().to(DEVICE)
    n = sum(query_lens)
    q = torch.randn(n, num_heads, head_dim, generator=g).to(dtype).to(DEVICE)
    k = torch.randn(n, num_kv_heads, head_dim, generator=g).to(dtype).to(DEVICE)
    v = torch.randn(n, num_kv_heads, head_dim, generator=g).to(dtype).to(DEVICE)
    starts = torch.tensor([0, 7, 27, 30], dtype=torch.int32, device=DEVICE)
    out = torch.zeros_like(q)
    paged_prefill(q, k, v, cache, tables, starts, torch.tensor(seq_lens, dtype=torch.int32, device=DEVICE),
                  torch.arange(3, dtype=torch.int32, device=DEVICE), max(query_lens), 0.25, out,
                  block_m=16, block_n=16)
    k_all, v_all = dense(cache, dtype)
    for i in range(3):
        s, e = starts[i].item(), starts[i + 1].item()
        kc, vc = context(k_all, v_all, tables[i], cached[i])
        kc, vc = torch.cat([kc, k[s:e].cpu().float()]), torch.cat([vc, v[s:e].cpu().float()])
        expected = ref_attention(q[s:e].cpu(), kc, vc, cached[i], 0.25)
        torch.testing.assert_close(out[s:e].float().cpu(), expected, atol=TOL[dtype], rtol=TOL[dtype])


def test_int8_decode_close_to_full_precision():
    """INT8 KV changes decode outputs by well under 5% of their scale."""
    full = make_cache(16, 4, 2, 32, torch.float32, quant=False)
    kq, ks = quantize_kv(full.k)
    vq, vs = quantize_kv(full.v)
    int8 = LayerKVCache(kq, vq, ks, vs)
    tables = torch.arange(16, dtype=torch.int32, device=DEVICE).view(2, 8)
    lens = torch.tensor([30, 11], dtype=torch.int32, device=DEVICE)
    q = torch.randn(2, 4, 32, device=DEVICE)
    a, b = torch.empty_like(q), torch.empty_like(q)
    paged_decode(q, full, tables, lens, 32**-0.5, a, block_n=16)
    paged_decode(q, int8, tables, lens, 32**-0.5, b, block_n=16)
    assert (a - b).abs().max() < 0.05 * a.abs().max()
    assert not torch.equal(a, b)


def test_choose_num_splits():
    assert choose_num_splits(100, 1, 2) == 1
    assert choose_num_splits(8192, 1, 2) == 32
    assert choose_num_splits(8192, 64, 4) == 2
    assert choose_num_splits(600, 1, 1) == 3
