"""INT8 KV quantization round trip (per token, per head)."""

import torch

from inference.kv_cache.quant import dequantize_kv, quantize_kv


def test_round_trip_error_is_within_half_a_step():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 16, 2, 64, generator=gen) * torch.rand(6, 16, 2, 1, generator=gen) * 10
    q, scale = quantize_kv(x)
    assert q.dtype == torch.int8 and q.shape == x.shape
    assert scale.dtype == torch.float32 and scale.shape == x.shape[:-1]
    assert q.abs().max() <= 127
    back = dequantize_kv(q, scale, torch.float32)
    assert ((back - x).abs() <= scale.unsqueeze(-1) / 2 + 1e-6).all()
    rel = (back - x).norm() / x.norm()
    assert rel < 0.01
    assert torch.equal(q.abs().amax(dim=-1), torch.full_like(scale, 127, dtype=torch.int8))


def test_bf16_input_and_output_dtype():
    x = torch.randn(4, 3, 32).to(torch.bfloat16)
    q, scale = quantize_kv(x)
    back = dequantize_kv(q, scale, torch.bfloat16)
    assert back.dtype == torch.bfloat16
    assert ((back.float() - x.float()).norm() / x.float().norm()) < 0.02


def test_zero_rows_give_zero_scale_and_zero_values():
    x = torch.zeros(2, 4, 8)
    x[1, 2] = torch.linspace(-1, 1, 8)
    q, scale = quantize_kv(x)
    assert scale[0].eq(0).all() and scale[1, 2] > 0 and q[0].eq(0).all()
    back = dequantize_kv(q, scale)
    assert back[0].eq(0).all() and not back.isnan().any()
    assert torch.allclose(back[1, 2], x[1, 2], atol=float(scale[1, 2]) / 2 + 1e-7)


def test_outliers_only_cost_their_own_row():
    x = torch.randn(3, 2, 16)
    x[0, 0, 0] = 1000.0
    q, scale = quantize_kv(x)
    back = dequantize_kv(q, scale)
    assert ((back[1:] - x[1:]).norm() / x[1:].norm()) < 0.01
