"""dtype "auto": bf16 only where the hardware computes it (an AVX2-only CPU runs bf16 GEMMs ~40x slower)."""

from __future__ import annotations

import pytest
import torch

from inference.compute_dtype import native_bf16, resolve_dtype, torch_dtype
from inference.config import EngineConfig


def test_auto_follows_the_hardware_and_names_pass_through(monkeypatch):
    assert resolve_dtype("auto") == ("bfloat16" if native_bf16() else "float32")
    assert resolve_dtype("float16") == "float16" and torch_dtype("bfloat16") is torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_dtype("auto") == "float32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_dtype("auto") == "bfloat16"
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("int4")


def test_the_engine_defaults_to_auto_and_runs_the_resolved_dtype(tiny_llama_dir):
    from inference.model_runner import ModelRunner

    config = EngineConfig(model=str(tiny_llama_dir))
    assert config.dtype == "auto"
    assert ModelRunner(config).dtype is torch_dtype("auto")


def test_without_hardware_bf16_auto_stores_weights_in_fp16_and_kv_in_bf16(monkeypatch):
    from inference.compute_dtype import resolve_kv_dtype, resolve_weight_quant
    from inference.models.quant_linear import fp16_gemm_available

    monkeypatch.setenv("CODELOOP_CPU_BF16", "0")
    assert not native_bf16() and resolve_dtype("auto") == "float32"
    assert resolve_weight_quant("none", "auto") == ("fp16" if fp16_gemm_available() else "none")
    assert resolve_kv_dtype("auto", "auto") == "bfloat16" and resolve_kv_dtype("int8", "auto") == "int8"
    # asked for explicitly: exactly as asked
    assert resolve_weight_quant("none", "float32") == "none" and resolve_kv_dtype("auto", "float32") == "float32"
    assert resolve_weight_quant("int4", "auto") == "int4"
    assert resolve_weight_quant("none", "auto", "cuda") == "none"
    monkeypatch.setenv("CODELOOP_CPU_BF16", "1")
    assert native_bf16() and resolve_dtype("auto") == "bfloat16"
    assert resolve_weight_quant("none", "auto") == "none" and resolve_kv_dtype("auto", "auto") == "bfloat16"


def test_float32_auto_runs_fp16_weights_and_bf16_kv_close_to_float32(monkeypatch, tiny_qwen2_dir):
    """The tiny model under dtype auto on a CPU without hardware bf16 against plain float32: same logits up to
    the rounding of weights to fp16 and of K/V to bf16."""
    from inference.batch import SeqChunk, StepBatch
    from inference.model_runner import ModelRunner
    from inference.models.quant_linear import Fp16Linear, fp16_gemm_available

    if not fp16_gemm_available():
        pytest.skip("this torch build has no fbgemm fp16 GEMM")
    monkeypatch.setenv("CODELOOP_CPU_BF16", "0")
    logits = {}
    for dtype in ("float32", "auto"):
        runner = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype=dtype))
        runner.allocate_kv(16)
        linears = [type(m) for m in runner.model.modules() if "Linear" in type(m).__name__]
        assert set(linears) == ({Fp16Linear} if dtype == "auto" else {torch.nn.Linear})
        assert runner.kv_caches[0].k.dtype == (torch.bfloat16 if dtype == "auto" else torch.float32)
        prompt = list(range(40, 70))
        first = runner.forward_logits(StepBatch([SeqChunk(1, prompt[:20], 0, list(range(0, 2)), False)]))
        rest = runner.forward_logits(StepBatch([SeqChunk(1, prompt[20:], 20, list(range(0, 2)), False)]))
        logits[dtype] = torch.cat([first, rest])
    err = (logits["auto"] - logits["float32"]).norm() / logits["float32"].norm()
    assert err < 1e-2, err
