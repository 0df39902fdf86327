"""The prefill roofline of `bench engine`: FLOPs per token from the model's shape, and one GEMM's rate."""

from __future__ import annotations

import json

import torch

from bench.data import gemm_flops_per_s, prefill_flops_per_token
from inference.models.config import ModelConfig


def test_prefill_flops_count_every_block_matmul_weight_twice(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    cfg = ModelConfig.from_hf_dict(json.loads((tiny_llama_dir / "config.json").read_text()))
    hf = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, torch_dtype=torch.float32)
    block_weights = sum(p.numel() for n, p in hf.named_parameters() if ".layers." in n and p.dim() == 2)
    assert prefill_flops_per_token(cfg, 0) == 2 * block_weights  # no keys: the linear layers only
    # each extra key costs one score and one weighted value per query dimension, on every layer; causal: half
    extra = prefill_flops_per_token(cfg, 100) - prefill_flops_per_token(cfg, 0)
    assert extra == 2 * cfg.num_layers * 2 * cfg.num_heads * cfg.head_dim * 50


def test_gemm_rate_is_a_positive_flop_rate():
    rate = gemm_flops_per_s(torch.float32, 64, 64, 64, repeats=3)
    assert 1e6 < rate < 1e15


def test_decode_bytes_count_the_packed_copies_of_hybrid_weights(tiny_qwen2_dir):
    """Decode reads the tied lm_head once per token; with hybrid weights it reads the packed int4 copies (the
    lm_head's too), not the dense ones."""
    from bench.data import weight_bytes_per_token
    from inference.config import EngineConfig
    from inference.model_runner import ModelRunner
    from inference.models.hybrid_linear import HybridLinear

    dense = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32")).model
    head = dense.lm_head.weight
    assert head is dense.embed_tokens.weight and weight_bytes_per_token(dense) >= head.numel() * head.element_size()
    hybrid = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", weight_quant="hybrid_int4")).model
    packed = [m for m in hybrid.modules() if isinstance(m, HybridLinear)]
    assert any(m.weight is hybrid.embed_tokens.weight for m in packed)  # tied lm_head: packed too
    dense_weights = sum(m.weight.numel() * m.weight.element_size() for m in packed)
    expected = weight_bytes_per_token(dense) - dense_weights + sum(m.packed.nbytes for m in packed)
    assert weight_bytes_per_token(hybrid) == expected < weight_bytes_per_token(dense)
