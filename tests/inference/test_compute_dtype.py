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
