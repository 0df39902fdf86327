"""Our int8 x int8 prefill GEMM (``inference.kernels.int8x8_mm``): its math against a float64 reference of
the same quantization, row independence across register blocks, the shapes it refuses, and prompt rows of the
hybrid model through it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inference import kernels
from inference.models.hybrid_linear import HybridLinear, PackedWeight, RowSplit, make_hybrid, packable
from inference.models.quant_linear import quantize_int8

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="neither AVX-512 VNNI nor AVX2 here, or no C++ compiler")


def reference(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """What the kernel computes, in float64: activations per block of 32 to [-n, n] (amax / n, round half even;
    n = 127, or 63 on plain AVX2)."""
    n = kernels.int8x8_activation_max()
    x = x.double()
    m, k = x.shape
    blocks = x.view(m, k // 32, 32)
    amax = blocks.abs().amax(-1, keepdim=True)
    xq = torch.round(blocks * torch.where(amax > 0, n / amax, torch.zeros_like(amax))).clamp(-n, n)
    return ((xq * amax / n).view(m, k) @ q.double().T) * scale.double()


def packed(n: int, k: int, seed: int = 0):
    w = torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) * 0.05
    q, scale = quantize_int8(w)
    return w, q, scale, kernels.pack_int8x8(q)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("n", "k"), [(48, 256), (80, 96), (16, 32)])  # 3, 5 and 1 tiles: partial column blocks
def test_matches_the_reference_and_the_float_product(dtype, n, k):
    w, q, scale, p = packed(n, k)
    x = (torch.randn(7, k) * 3).to(dtype)
    x[2, 5] = 60.0  # an outlier channel: its block's scale grows, the other blocks keep theirs
    y = kernels.int8x8_mm(x, p, scale)
    assert y.dtype == dtype and y.shape == (7, n)
    ref = reference(x, q, scale)
    assert ((y.double() - ref).norm() / ref.norm()).item() < (1e-5 if dtype == torch.float32 else 5e-3)
    exact = x.double() @ w.double().T
    bound = 0.02 * 127 / kernels.int8x8_activation_max()  # int8 weights and activations: ~1%; 7-bit ones ~2%
    assert ((y.double() - exact).norm() / exact.norm()).item() < bound
    if dtype == torch.bfloat16:  # written as bf16 by the kernel: rounded to nearest even, as torch rounds
        assert torch.equal(y, kernels.int8x8_mm(x.float(), p, scale).to(torch.bfloat16))


@needs_kernel
def test_full_scale_weights_and_activations_do_not_saturate():
    # every weight at full scale (stored bytes 255 and 1) against full-scale activations of one sign: where
    # AVX2's int16 pair sums would saturate with 8-bit activations (hence 7 bits there), and a lost sign shows
    n, k = 32, 128
    q = torch.full((n, k), 127, dtype=torch.int8)
    q[1::2] = -127
    q[:, ::3] *= -1
    scale = torch.full((n,), 0.01)
    x = torch.where(q[0] > 0, 2.0, -2.0).repeat(3, 1)  # matches row 0's signs: its dot is k x 127 x 127
    x[1] = -x[1]
    x[2, ::2] = 0.0
    y = kernels.int8x8_mm(x, kernels.pack_int8x8(q), scale)
    ref = reference(x, q, scale)
    assert torch.allclose(y.double(), ref, rtol=1e-6, atol=0)
    assert y[0, 0].item() == pytest.approx(k * 2.0 * 127 * 0.01, rel=1e-6)


@needs_kernel
def test_the_activation_range_follows_the_instruction_set():
    assert kernels.int8x8_activation_max() == (63 if kernels.isa() == "avx2" else 127)


@needs_kernel
def test_rows_are_independent_of_the_batch():
    _, _, scale, p = packed(112, 160, seed=1)
    x = torch.randn(11, 160, dtype=torch.bfloat16)  # row blocks of 3, 3, 3 and 2
    batched = kernels.int8x8_mm(x, p, scale)
    for m in range(11):
        assert torch.equal(kernels.int8x8_mm(x[m:m + 1], p, scale), batched[m:m + 1])
    assert torch.equal(kernels.int8x8_mm(x[4:9], p, scale), batched[4:9])


@needs_kernel
def test_zero_rows_and_zero_activations():
    _, _, scale, p = packed(16, 64)
    assert kernels.int8x8_mm(torch.zeros(0, 64), p, scale).shape == (0, 16)
    assert torch.count_nonzero(kernels.int8x8_mm(torch.zeros(2, 64), p, scale)) == 0


@needs_kernel
def test_shapes_it_cannot_take_are_refused_clearly():
    _, q, scale, p = packed(32, 64)
    with pytest.raises(RuntimeError, match="packed weight is for another K"):
        kernels.int8x8_mm(torch.randn(1, 96), p, scale)
    with pytest.raises(RuntimeError, match="scale must be float"):
        kernels.int8x8_mm(torch.randn(1, 64), p, scale[:16])
    with pytest.raises(ValueError, match="does not pack"):
        kernels.pack_int8x8(q[:, :48])
    assert packable(nn.Linear(48, 32), "int8x8") is None and packable(nn.Linear(64, 32), "int8x8") == 0


@needs_kernel
def test_prompt_rows_take_the_int8_copy_and_generated_rows_the_int4_copy():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("qkv_proj", nn.Linear(128, 64, bias=True))
    weight = model.qkv_proj.weight.detach().clone()
    split = make_hybrid(model, "int4x8", packed_max_rows=4, prompt_kind="int8x8")
    layer = model.qkv_proj
    assert isinstance(layer, HybridLinear) and layer.prompt.kind == "int8x8" and layer.packed.kind == "int4x8"
    assert layer.weight is None  # every row takes one of the two copies: the dense weight is dropped
    x = torch.randn(6, 128)
    split.set_rows([False, False, False, False, True, True])  # a prompt of 4 rows, then 2 generated rows
    y = layer(x)
    split.clear()
    assert torch.equal(y[:4], layer.prompt.matmul(x[:4]) + layer.bias)
    assert torch.equal(y[4:], layer.packed.matmul(x[4:]) + layer.bias)
    dense = x @ weight.T + layer.bias
    assert ((y - dense).norm() / dense.norm()).item() < 0.05


@needs_kernel
def test_without_a_decode_copy_every_row_takes_the_prompt_copy():
    lin = nn.Linear(64, 32, bias=False)
    prompt = PackedWeight(lin.weight.detach(), "int8x8")
    layer = HybridLinear(lin, None, RowSplit(4), 4, prompt)
    x = torch.randn(3, 64)
    assert torch.equal(layer(x), prompt.matmul(x))


@needs_kernel
def test_engine_prefills_through_int8x8_and_agrees_with_dense(tiny_qwen2_dir):
    from inference.config import CacheConfig, EngineConfig
    from inference.engine import Engine
    from inference.sampling import SamplingParams

    def run(**kw):
        engine = Engine(EngineConfig(model=str(tiny_qwen2_dir), dtype="bfloat16", compile_decode="off",
                                     cache=CacheConfig(block_size=4, enable_prefix_caching=False), **kw))
        prompts = [list(range(3, 40)), list(range(50, 61))]
        outs = engine.generate(prompts, SamplingParams(max_tokens=6, ignore_eos=True))
        return engine, [o.outputs[0].token_ids for o in outs]

    engine, ours = run(weight_quant="hybrid_int4x8", prefill_quant="int8x8")
    report = engine.runner.kernel_report()
    assert report["prefill"] == "int8x8" and report["decode"] == "int4x8"
    memory = report["weight_memory"]
    plain_engine, plain = run(weight_quant="hybrid_int4x8")
    assert memory["dense_bytes"] < plain_engine.runner.kernel_report()["weight_memory"]["dense_bytes"]  # bf16 body dropped
    assert engine.runner.kernel_report()["prefill"] == "int8x8"
    same = sum(a == b for x, y in zip(ours, plain, strict=True) for a, b in zip(x, y, strict=True))
    assert same >= 0.5 * sum(map(len, plain))  # random tiny weights: near ties may flip, most tokens agree


def test_int8x8_prompts_need_a_hybrid_weight_quant():
    from inference.config import EngineConfig

    with pytest.raises(ValueError, match="prefill_quant int8x8 needs weight_quant auto or hybrid"):
        EngineConfig(model="x", weight_quant="none", prefill_quant="int8x8")
    with pytest.raises(ValueError, match="prefill_quant must be one of"):
        EngineConfig(model="x", prefill_quant="int4")


def test_without_the_kernel_prompt_rows_stay_dense_with_a_log_line(tiny_qwen2_dir, monkeypatch, caplog):
    import logging

    from inference.config import EngineConfig
    from inference.model_runner import ModelRunner

    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setenv(kernels.OFF_ENV, "off")
    with caplog.at_level(logging.INFO, logger="inference.autotune"):
        runner = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", weight_quant="hybrid_int4",
                                          prefill_quant="int8x8", compile_decode="off"))
    assert "prompt rows stay dense (int8x8 unavailable here)" in caplog.text
    report = runner.kernel_report()
    assert report["prefill"] == "dense" and report["decode"] == "int4"


@needs_kernel
def test_hybrid_int8x8_keeps_one_int8_copy_for_prompt_and_generated_rows(tiny_qwen2_dir):
    from inference.config import EngineConfig
    from inference.model_runner import ModelRunner

    runner = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="bfloat16", weight_quant="hybrid_int8x8",
                                      compile_decode="off"))
    report = runner.kernel_report()
    assert report["decode"] == "int8x8" and report["prefill"] == "int8x8" and report["source"] == "config"
    body = [m for m in runner.model.modules() if isinstance(m, HybridLinear) and m.split is not None]
    assert body and all(m.packed is m.prompt and m.weight is None for m in body)
    int8_bytes = sum(m.packed.nbytes for m in runner.model.modules() if isinstance(m, HybridLinear))
    assert report["weight_memory"]["packed_bytes"] == int8_bytes  # each shared copy counted once
    dense = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="bfloat16", weight_quant="hybrid_int8x8",
                                     prefill_quant="dense", compile_decode="off")).kernel_report()
    assert dense["prefill"] == "dense"


def test_a_hybrid_kind_that_falls_back_stores_dense_weights_as_none_would(tiny_qwen2_dir, monkeypatch):
    from inference.config import EngineConfig
    from inference.model_runner import ModelRunner
    from inference.models.quant_linear import Fp16Linear, fp16_gemm_available

    if not fp16_gemm_available():
        pytest.skip("this torch has no fbgemm fp16 GEMM")
    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setenv(kernels.OFF_ENV, "off")  # no native kernels: int8x8 falls back to dense
    monkeypatch.setenv("CODELOOP_CPU_BF16", "0")  # no hardware bf16: dtype auto computes in float32
    runner = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), weight_quant="hybrid_int8x8", compile_decode="off"))
    assert runner.kernel_report()["decode"] == "dense" and runner.kernel_report()["source"] == "fallback"
    layers = [m for m in runner.model.modules() if isinstance(m, (nn.Linear, Fp16Linear))]
    assert layers and all(isinstance(m, Fp16Linear) for m in layers)  # fp16-stored, as weight_quant "none"
