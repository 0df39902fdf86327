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
    with pytest.raises(ValueError, match="int8, int4 or fp16"):
        quantize_model(nn.Sequential(nn.Linear(4, 4)), "fp8")


@pytest.mark.parametrize("rows", [1, 7, 300])
def test_fp16_linear_computes_what_float32_weights_compute(rows):
    from inference.models.quant_linear import Fp16Linear, fp16_gemm_available

    if not fp16_gemm_available():
        pytest.skip("this torch build has no fbgemm fp16 GEMM")
    dense = nn.Linear(96, 80)
    with torch.no_grad():  # a bf16 checkpoint's weights: exact in fp16
        dense.weight.copy_(dense.weight.to(torch.bfloat16).float())
    x = torch.randn(rows, 96)
    got = Fp16Linear(dense)(x)
    assert got.dtype == torch.float32 and got.shape == (rows, 80)
    assert torch.allclose(got, dense(x), atol=1e-5, rtol=1e-5)


def test_loading_quantizes_each_linear_as_its_weight_arrives(tiny_qwen2_dir, monkeypatch):
    """No whole float32 copy of the model is resident at once: each linear is replaced as soon as its weight
    is loaded, while the rest are still being read (a tied lm_head, which has no weight of its own to wait
    for, is the one left for after loading)."""
    import inference.models.quant_linear as ql
    from inference.attention import get_backend
    from inference.models.llama import LlamaModel
    from inference.models.loader import load_model

    if not ql.fp16_gemm_available():
        pytest.skip("this torch build has no fbgemm fp16 GEMM")
    loading = {"now": False}
    calls: list[tuple[str, bool]] = []
    real_quantize, real_load = ql.quantize_module, LlamaModel.load_hf_weights

    def spy(model, name, mode):
        calls.append((name, loading["now"]))
        return real_quantize(model, name, mode)

    def load(self, *args, **kwargs):
        loading["now"] = True
        try:
            return real_load(self, *args, **kwargs)
        finally:
            loading["now"] = False

    monkeypatch.setattr(ql, "quantize_module", spy)
    monkeypatch.setattr(LlamaModel, "load_hf_weights", load)
    loaded = load_model(tiny_qwen2_dir, backend=get_backend("sdpa"), dtype=torch.float32, weight_quant="fp16")
    linears = {n for n, m in loaded.model.named_modules() if isinstance(m, ql.Fp16Linear)}
    assert linears and not any(isinstance(m, nn.Linear) for m in loaded.model.modules())
    assert {n for n, during in calls if during} >= linears - {"lm_head"}
