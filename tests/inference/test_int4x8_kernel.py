"""Our int4 x int8 kernel (``inference.kernels``): its math against a torch reference of the same
quantization, row independence, the shapes it refuses, and the fallback when it cannot run."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from inference import kernels
from inference.models.hybrid_linear import PackedWeight, packable
from inference.models.quant_linear import dequantize_int4, quantize_int4

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="neither AVX-512 VNNI nor AVX2 here, or no C++ compiler")


def reference(x: torch.Tensor, q: torch.Tensor, sz: torch.Tensor, group: int) -> torch.Tensor:
    """What the kernel computes, in float64: activations int8 per block of 32 (amax / 127, round half even)."""
    x = x.double()
    m, k = x.shape
    n = q.shape[0]
    blocks = x.view(m, k // 32, 32)
    amax = blocks.abs().amax(-1, keepdim=True)
    xq = torch.round(blocks * torch.where(amax > 0, 127 / amax, torch.zeros_like(amax))).clamp(-128, 127)
    dots = torch.einsum("mbk,nbk->mnb", xq, q.double().view(n, k // 32, 32) - 8) * (amax / 127).view(m, 1, -1)
    per_group = dots.view(m, n, k // group, group // 32).sum(-1)  # [M, N, groups]
    scale, zero = sz.double()[..., 0].T, sz.double()[..., 1].T  # [N, groups]
    xsum = x.view(m, k // group, group).sum(-1)  # [M, groups]
    return (per_group * scale).sum(-1) + xsum @ zero.T


def quantized(n: int, k: int, group: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=gen) * 0.05
    q, sz = quantize_int4(w, group)
    sz = sz.to(torch.bfloat16).float()  # the packed copy keeps bf16 scales
    return q, sz, kernels.pack_int4x8(q, sz, group)


@needs_kernel
@pytest.mark.parametrize("group", [32, 64, 128])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matches_the_reference_and_the_dequantized_weight(group, dtype):
    q, sz, w = quantized(48, 256, group)
    x = (torch.randn(5, 256) * 3).to(dtype)
    x[2, 7] = 60.0  # an outlier channel: its block's scale grows, the other blocks keep theirs
    y = kernels.int4x8_mm(x, w, group)
    assert y.dtype == dtype and y.shape == (5, 48)
    ref = reference(x, q, sz, group)
    assert ((y.double() - ref).norm() / ref.norm()).item() < (1e-5 if dtype == torch.float32 else 5e-3)
    exact = x.double() @ dequantize_int4(q, sz, torch.float64).T
    assert ((y.double() - exact).norm() / exact.norm()).item() < 0.02  # int8 activations cost ~1%


@needs_kernel
def test_rows_are_independent_of_the_batch():
    _, _, w = quantized(64, 384, 128, seed=1)
    x = torch.randn(9, 384, dtype=torch.bfloat16)  # 9 rows: tiles of 4, 4 and 1 row
    batched = kernels.int4x8_mm(x, w, 128)
    for m in range(9):
        assert torch.equal(kernels.int4x8_mm(x[m:m + 1], w, 128), batched[m:m + 1])
    assert torch.equal(kernels.int4x8_mm(x[3:6], w, 128), batched[3:6])


@needs_kernel
def test_zero_rows_and_zero_activations():
    _, _, w = quantized(16, 64, 32)
    assert kernels.int4x8_mm(torch.zeros(0, 64), w, 32).shape == (0, 16)
    assert torch.count_nonzero(kernels.int4x8_mm(torch.zeros(2, 64), w, 32)) == 0


@needs_kernel
def test_shapes_it_cannot_take_are_refused_clearly():
    q, sz, w = quantized(16, 64, 32)
    with pytest.raises(RuntimeError, match="packed weight is for another K"):
        kernels.int4x8_mm(torch.randn(1, 96), w, 32)
    with pytest.raises(RuntimeError, match="does not fit group size"):
        kernels.int4x8_mm(torch.randn(1, 64), w, 48)
    with pytest.raises(RuntimeError, match="another K or group size"):
        kernels.int4x8_mm(torch.randn(1, 64), w, 64)  # packed with groups of 32
    with pytest.raises(ValueError, match="does not pack"):
        kernels.pack_int4x8(q[:8], sz[:, :8], 32)  # 8 output rows: not a whole tile
    assert not kernels.packs(24, 64, 32) and not kernels.packs(16, 80, 32) and kernels.packs(32, 96, 32)
    assert packable(nn.Linear(64, 24), "int4x8") is None
    assert packable(nn.Linear(96, 32), "int4x8") == 32 and packable(nn.Linear(256, 32), "int4x8") == 32


@needs_kernel
def test_packed_weight_serves_generated_rows():
    lin = nn.Linear(128, 64, bias=False).to(torch.bfloat16)
    packed = PackedWeight(lin.weight.detach(), "int4x8", 32)
    x = torch.randn(3, 128, dtype=torch.bfloat16)
    y = packed.matmul(x)
    dense = lin(x).float()
    assert y.dtype == torch.bfloat16 and ((y.float() - dense).norm() / dense.norm()).item() < 0.1
    assert packed.nbytes == 64 * 128 // 2 + 64 * (128 // 32) * 2 * 2


@needs_kernel
def test_loading_again_in_the_same_process_keeps_the_ops(monkeypatch):
    monkeypatch.setattr(kernels, "_loaded", None)
    assert kernels.available()


def test_turned_off_or_unbuildable_means_torch_kernels(monkeypatch, caplog):
    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setenv(kernels.OFF_ENV, "off")
    assert not kernels.available()
    with pytest.raises(RuntimeError, match="int4x8 kernel unavailable"):
        PackedWeight(torch.randn(16, 32), "int4x8", 32)
    from inference.autotune import _pack_all

    with caplog.at_level(logging.INFO):
        assert _pack_all([nn.Linear(32, 16)], "int4x8") is None
    assert "int4x8" in caplog.text

    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.delenv(kernels.OFF_ENV)
    monkeypatch.setattr(kernels, "cpu_flags", lambda: {"sse4_2", "avx"})  # neither AVX-512 VNNI nor AVX2
    with caplog.at_level(logging.INFO):
        assert not kernels.available()
    assert "lacks avx2, f16c, fma (and AVX-512 VNNI)" in caplog.text


@pytest.mark.parametrize(("flags", "isa"), [
    ({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"}, "avx512_vnni"),  # Zen 4, Ice Lake+
    ({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl"}, "avx2"),  # Skylake-X: AVX-512 without VNNI
    ({"avx2", "fma", "f16c", "avx_vnni"}, "avx_vnni"),  # Alder Lake and later client cores
    ({"avx2", "fma", "f16c"}, "avx2"),  # Zen 1-3, Haswell to Comet Lake
    ({"avx", "sse4_2"}, None),
])
def test_the_instruction_set_follows_the_cpu_flags(monkeypatch, flags, isa):
    monkeypatch.setattr(kernels, "cpu_flags", lambda: flags)
    assert kernels.isa() == isa
    assert bool(kernels.missing_flags()) == (isa is None)


def test_a_failed_build_is_a_warning_not_a_crash(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setattr(kernels, "cpu_flags", lambda: set(kernels.ISAS["avx2"]))
    monkeypatch.setattr(kernels, "_registered", lambda: False)  # as in a process that never loaded it
    monkeypatch.setenv("CODELOOP_HOME", str(tmp_path))
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    with caplog.at_level(logging.WARNING):
        assert not kernels.available()
    assert "native kernels: unavailable" in caplog.text
    assert not list((tmp_path / "kernels").iterdir())  # no half-written library or object file left behind
