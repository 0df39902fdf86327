"""Weight-only int8 / int4 linear layers: pure round trips, kernel layout, model-level closeness."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inference.models.quant_linear import (
    Int4Linear,
    Int8Linear,
    dequantize_int4,
    dequantize_int8,
    quantize_int4,
    quantize_int8,
    quantize_model,
)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())


def test_int8_round_trip_within_half_step():
    w = torch.randn(48, 96)
    w[3] = 0  # an all-zero row must survive
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and int(q.abs().max()) <= 127
    back = dequantize_int8(q, scale, torch.float32)
    assert torch.all((back - w).abs() <= scale[:, None] / 2 + 1e-7)
    assert torch.equal(back[3], torch.zeros(96))


def test_int4_round_trip_within_half_step():
    w = torch.randn(32, 128)
    q, sz = quantize_int4(w, group_size=32)
    assert q.min() >= 0 and q.max() <= 15 and sz.shape == (4, 32, 2)
    back = dequantize_int4(q, sz, torch.float32)
    step = sz[..., 0].t().repeat_interleave(32, dim=1)  # [N, K]
    assert torch.all((back - w).abs() <= step / 2 + 1e-5)
    with pytest.raises(ValueError):
        quantize_int4(torch.randn(32, 100), group_size=32)


@pytest.mark.parametrize("rows", [1, 3, 200])  # packed kernel for few rows, dequantize + GEMM for many
@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_quant_linear_matches_its_dequantized_weight(kind, rows):
    torch.manual_seed(0)
    dense = nn.Linear(256, 160, bias=True).to(torch.bfloat16)
    layer = Int8Linear(dense) if kind == "int8" else Int4Linear(dense, group_size=64)
    if kind == "int8":
        w = dequantize_int8(*quantize_int8(dense.weight.detach()), torch.float32)
    else:
        w = dequantize_int4(*quantize_int4(dense.weight.detach(), 64), torch.float32)
    assert rel_err(layer.dense_weight(torch.float32), w) < 1e-2  # bf16-rounded scales only
    x = torch.randn(rows, 256, dtype=torch.bfloat16)
    exact = x.float() @ w.t() + dense.bias.float()
    got = layer(x)
    assert got.dtype == torch.bfloat16 and got.shape == (rows, 160)
    assert rel_err(got, exact) < 1e-2
    assert rel_err(got, dense(x)) < (0.02 if kind == "int8" else 0.15)


def test_quantized_model_close_to_dense(tiny_qwen2_dir):
    from inference.config import EngineConfig
    from inference.model_runner import ModelRunner
    from tests.inference.runner_driver import generate

    prompts = ["def add(a, b):", "class Stack:", "for i in range(", "import os\n"]
    outs, logits = {}, {}
    for mode in ("none", "int8", "int4"):
        runner = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="bfloat16", weight_quant=mode))
        runner.allocate_kv(64)
        if mode != "none":
            assert not any(isinstance(m, nn.Linear) for m in runner.model.modules())
        ids = [runner.tokenizer(p).input_ids for p in prompts]
        outs[mode] = generate(runner, ids, 4)
        from inference.batch import SeqChunk, StepBatch

        logits[mode] = runner.forward_logits(StepBatch([SeqChunk(9, ids[0], 0, list(range(50, 60)), False)]))
    assert rel_err(logits["int8"], logits["none"]) < 0.03
    assert rel_err(logits["int4"], logits["none"]) < 0.35  # random weights: ~11% error per int4 layer
    assert sum(a[0] == b[0] for a, b in zip(outs["int8"], outs["none"], strict=True)) >= 3


def test_quantize_model_rejects_unknown_mode():
    with pytest.raises(ValueError, match="int8 or int4"):
        quantize_model(nn.Sequential(nn.Linear(4, 4)), "fp8")
