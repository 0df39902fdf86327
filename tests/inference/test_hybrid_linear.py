"""Hybrid weights: prompt rows through the dense weights, generated rows through the packed copy."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inference.batch import SeqChunk, StepBatch
from inference.config import CacheConfig, EngineConfig
from inference.models.hybrid_linear import HybridLinear, PackedWeight, RowSplit
from inference.sampling import SamplingParams


@pytest.mark.parametrize("generated, packed, dense", [
    ([True] * 3, None, None),  # all generated: packed by row count, as the lm_head (no per-step state)
    ([False] * 3, slice(0, 0), None),
    ([True, True, False, False], slice(0, 2), None),
    ([False, True, True, False], [1, 2], [0, 3]),
    ([True] * 9, slice(0, 0), None),  # more than packed_max_rows: all dense
])
def test_row_split(generated, packed, dense):
    split = RowSplit(packed_max_rows=8)
    split.set_rows(generated)
    if packed is None or isinstance(packed, slice):
        assert split.packed == packed and split.dense is None
    else:
        assert split.packed.tolist() == packed and split.dense.tolist() == dense
    split.clear()
    assert split.packed is None


@pytest.mark.parametrize("kind", ["int8", "int4", "fp16"])
@pytest.mark.parametrize("generated", [[True] * 4, [False] * 4, [True, True, False, False],
                                       [False, True, False, True]])
def test_each_row_takes_its_path_exactly(kind, generated):
    torch.manual_seed(0)
    linear = nn.Linear(64, 32, bias=True)
    packed = PackedWeight(linear.weight.detach(), kind, 32 if kind == "int4" else None)
    split = RowSplit(packed_max_rows=8)
    module = HybridLinear(linear, packed, split, packed_max_rows=8)
    x = torch.randn(4, 64)
    split.set_rows(generated)
    with torch.no_grad():
        y = module(x)
        dense_rows = [i for i, gen in enumerate(generated) if not gen]
        if dense_rows:  # prompt rows: one dense GEMM over them
            want = F.linear(x[dense_rows], linear.weight) + linear.bias
            assert torch.equal(y[dense_rows], want)
        rows = [i for i, gen in enumerate(generated) if gen]
        if rows:  # generated rows: one packed GEMM over them
            assert torch.equal(y[rows], packed.matmul(x[rows]) + linear.bias)
        # torch's int8 / int4 kernels give a row its own result in any batch; fbgemm's AVX2 fp16 GEMM rounds a
        # lone row 1 ulp apart from the same row in a batch (Zen 3), so fp16 is not asked that
        for i in rows if kind != "fp16" else ():
            assert torch.equal(y[i:i + 1], packed.matmul(x[i:i + 1]) + linear.bias)
        split.clear()
        assert torch.equal(module(x), packed.matmul(x) + linear.bias)  # by count: 4 rows fit
        x9 = torch.randn(9, 64)  # more rows than packed_max_rows: dense
        assert torch.equal(module(x9), F.linear(x9, linear.weight) + linear.bias)


@pytest.fixture(scope="module")
def hybrid_runner(tiny_qwen2_dir):
    from inference.model_runner import ModelRunner

    config = EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", weight_quant="hybrid_int4",
                          cache=CacheConfig(block_size=4))
    runner = ModelRunner(config)
    runner.allocate_kv(32)
    return runner


def test_runner_sends_prompt_rows_dense_and_generated_rows_packed(hybrid_runner, tiny_qwen2_dir, monkeypatch):
    from inference.model_runner import ModelRunner

    calls: list[int] = []
    original = PackedWeight.matmul
    monkeypatch.setattr(PackedWeight, "matmul", lambda self, x: calls.append(x.shape[0]) or original(self, x))
    params = SamplingParams(max_tokens=4)
    prompt = list(range(5, 15))
    prefill = SeqChunk(seq_id=0, token_ids=prompt, num_computed_tokens=0, block_table=[0, 1, 2], sample=True,
                       params=params, num_prompt_tokens=10)
    hybrid_runner.execute(StepBatch([prefill]))
    layers = hybrid_runner.model_config.num_layers
    assert calls == [1]  # only the lm_head, for the sampled row
    dense = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", cache=CacheConfig(block_size=4)))
    dense.allocate_kv(32)
    dense.execute(StepBatch([prefill]))
    for ours, theirs in zip(hybrid_runner.kv_caches, dense.kv_caches, strict=True):  # prompt KV: dense weights
        assert torch.equal(ours.k[:3], theirs.k[:3]) and torch.equal(ours.v[:3], theirs.v[:3])
    calls.clear()
    decode = SeqChunk(seq_id=0, token_ids=[20, 21, 22], num_computed_tokens=10, block_table=[0, 1, 2, 3],
                      sample=True, params=params, num_prompt_tokens=10, num_draft_tokens=2)
    hybrid_runner.execute(StepBatch([decode]))
    assert calls == [3] * (4 * layers) + [3]  # every body projection, then the lm_head for 3 rows
    report = hybrid_runner.kernel_report()
    assert report["decode"] == "int4" and report["source"] == "config"
    assert report["weight_memory"]["packed_bytes"] > 0 and report["weight_memory"]["dense_bytes"] > 0


def test_missing_packed_kernel_falls_back_to_dense(tiny_qwen2_dir, monkeypatch, caplog):
    from inference.model_runner import ModelRunner

    def missing(*args, **kwargs):
        raise RuntimeError("Could not run '_weight_int4pack_mm_for_cpu' with arguments from the 'CPU' backend")

    monkeypatch.setattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu", missing)
    config = EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", weight_quant="hybrid_int4",
                          cache=CacheConfig(block_size=4))
    with caplog.at_level(logging.INFO, logger="inference.autotune"):
        runner = ModelRunner(config)
    assert runner.kernels.decode == "dense" and runner.kernels.source == "fallback"
    assert not any(isinstance(m, HybridLinear) for m in runner.model.modules())
    assert "int4 packed kernel unavailable" in caplog.text
