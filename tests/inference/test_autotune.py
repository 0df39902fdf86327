"""Autotune: the choice a measured table implies, the cache keyed by CPU + torch + model, fallbacks."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from inference import autotune, kernels
from inference.autotune import DECODE_ROWS, PREFILL_ROWS, KernelPlan, choose, kernel_plan


def table(costs: dict[str, float], threads=(1, 2)) -> dict[str, float]:
    """A synthetic table: ``costs[kind]`` ms per row-independent pass, dense GEMM amortising rows."""
    out = {}
    for t in threads:
        for kind, base in costs.items():
            for rows in DECODE_ROWS:
                grow = 0.1 if kind == "dense" else 1.0  # packed kernels cost ~linear in rows
                out[f"{kind}@{t}t/M{rows}"] = base * (1 + grow * (rows - 1)) / (1.5 if t == 2 else 1)
        out[f"dense@{t}t/M{PREFILL_ROWS}"] = costs["dense"] * 20 / (1.8 if t == 2 else 1)
    return out


def test_choose_packed_decode_with_its_crossover():
    plan = choose(table({"dense": 10.0, "int8": 5.0, "int4": 3.0}), ["dense", "int8", "int4"], [1, 2])
    assert plan.decode == "int4" and plan.decode_threads == 2 and plan.prefill_threads == 2
    # int4: 3 * (1 + (r - 1)) vs dense 10 * (1 + 0.1 (r - 1)): packed wins up to r = 4, loses at 8
    assert plan.packed_max_rows == 4 and plan.source == "autotune" and plan.table


def test_choose_dense_when_nothing_beats_it():
    plan = choose(table({"dense": 2.0, "int4": 3.0}), ["dense", "int4"], [1, 2])
    assert plan.decode == "dense"


def test_a_kind_timed_at_one_row_only_is_weighed_and_loses():
    t = table({"dense": 10.0, "int4x8": 2.0, "int4": 80.0})
    for key in [k for k in t if k.startswith("int4@") and not k.endswith("/M1")]:
        del t[key]  # too slow at one row: the autotune skipped its other row counts
    plan = choose(t, ["dense", "int4", "int4x8"], [1, 2])
    assert plan.decode == "int4x8" and plan.decode_threads == 2


def test_choose_thread_count_per_step_kind():
    t = table({"dense": 10.0, "int4": 3.0})
    for rows in DECODE_ROWS:  # decode is faster on one thread (the other core is busy)
        t[f"int4@1t/M{rows}"] = t[f"int4@2t/M{rows}"] / 2
    plan = choose(t, ["dense", "int4"], [1, 2])
    assert plan.decode_threads == 1 and plan.prefill_threads == 2


def test_choose_the_faster_prompt_kind_and_its_threads():
    t = table({"dense": 10.0, "int4": 3.0})
    t.update({f"int8x8@1t/M{PREFILL_ROWS}": 150.0, f"int8x8@2t/M{PREFILL_ROWS}": 80.0})  # dense: 200 / 111
    plan = choose(t, ["dense", "int4"], [1, 2], ["dense", "int8x8"])
    assert plan.prefill == "int8x8" and plan.prefill_threads == 2 and plan.decode == "int4"
    t[f"int8x8@2t/M{PREFILL_ROWS}"] = 150.0
    assert choose(t, ["dense", "int4"], [1, 2], ["dense", "int8x8"]).prefill == "dense"
    assert choose(t, ["dense", "int4"], [1, 2]).prefill == "dense"  # not measured: never chosen


@pytest.fixture
def fake_measure(monkeypatch):
    calls = []

    def measure(model, dtype, thread_counts=None):
        calls.append(autotune.cpu_model())
        return KernelPlan(decode="int8", packed_max_rows=8, decode_threads=1, prefill_threads=2,
                          source="autotune", table={"int8@1t/M1": 1.0})

    monkeypatch.setattr(autotune, "measure", measure)
    return calls


class TinyModel(torch.nn.Module):
    class config:  # noqa: N801 - mimics ModelConfig's fields
        num_layers, hidden_size, intermediate_size, vocab_size = 2, 64, 128, 384


def test_cache_is_keyed_by_cpu_and_torch(tmp_path, monkeypatch, fake_measure):
    model = TinyModel()
    monkeypatch.setattr(autotune, "cpu_model", lambda: "AMD EPYC 9999")
    first = kernel_plan(model, torch.float32, tmp_path)
    second = kernel_plan(model, torch.float32, tmp_path)
    assert first.source == "autotune" and second.source == "cache" and second.decode == "int8"
    assert fake_measure == ["AMD EPYC 9999"]
    entries = json.loads((tmp_path / "autotune.json").read_text())
    (key,) = entries
    assert "AMD EPYC 9999" in key and torch.__version__ in key and "2x64x128x384" in key
    monkeypatch.setattr(autotune, "cpu_model", lambda: "Intel Xeon 8888")  # another CPU: its own measurement
    assert kernel_plan(model, torch.float32, tmp_path).source == "autotune"
    assert len(fake_measure) == 2 and len(json.loads((tmp_path / "autotune.json").read_text())) == 2
    assert kernel_plan(model, torch.float32, tmp_path, force=True).source == "autotune"


def test_a_cached_plan_is_not_used_once_its_kernels_cannot_run(tmp_path, monkeypatch, fake_measure):
    from inference import kernels

    if not kernels.available():
        pytest.skip("our kernels do not run here")
    model = TinyModel()
    monkeypatch.setattr(autotune, "cpu_model", lambda: "AMD EPYC 9999")
    assert kernel_plan(model, torch.float32, tmp_path).source == "autotune"
    assert kernel_plan(model, torch.float32, tmp_path).source == "cache"
    monkeypatch.setattr(kernels, "_loaded", False)  # turned off (CODELOOP_NATIVE_KERNELS=off) or unbuildable
    assert kernel_plan(model, torch.float32, tmp_path).source == "autotune"  # not the plan that named int4x8
    assert "int4x8" not in autotune.cache_key(autotune.model_shape(model))
    monkeypatch.setattr(kernels, "_loaded", True)
    assert kernel_plan(model, torch.float32, tmp_path).source == "cache"
    assert len(fake_measure) == 2


def test_unreadable_cache_is_measured_again(tmp_path, fake_measure):
    (tmp_path / "autotune.json").write_text("{not json")
    assert kernel_plan(TinyModel(), torch.float32, tmp_path).source == "autotune"
    key = autotune.cache_key(autotune.model_shape(TinyModel()))
    (tmp_path / "autotune.json").write_text(json.dumps({key: {"unknown_field": 1}}))
    assert kernel_plan(TinyModel(), torch.float32, tmp_path).source == "autotune"


def test_auto_weights_load_on_a_cpu_without_hardware_bf16(tiny_llama_dir, monkeypatch, tmp_path):
    # dtype auto computes in float32 there and keeps the embedding table 16-bit: the autotune times the linear
    # layers in float32 (it timed bf16 inputs against float32 weights and the engine failed to load)
    import shutil

    from safetensors.torch import load_file, save_file

    from inference.config import EngineConfig
    from inference.engine import Engine
    from inference.sampling import SamplingParams

    bf16_dir = shutil.copytree(tiny_llama_dir, tmp_path / "bf16")  # a bf16 checkpoint (untied embedding)
    for shard in bf16_dir.glob("*.safetensors"):
        save_file({k: v.bfloat16() for k, v in load_file(shard).items()}, shard, metadata={"format": "pt"})
    monkeypatch.setenv("CODELOOP_CPU_BF16", "0")
    monkeypatch.setenv("CODELOOP_AUTOTUNE_DIR", str(tmp_path))
    engine = Engine(EngineConfig(model=str(bf16_dir), dtype="auto", weight_quant="auto"))
    assert engine.runner.model.embed_tokens.weight.dtype != torch.float32
    assert engine.runner.kernels.source == "autotune"
    out = engine.generate(["def add(a, b):"], SamplingParams(max_tokens=4, temperature=0.0))
    assert len(out[0].outputs[0].token_ids) == 4


def test_measure_a_real_tiny_model_and_skip_a_missing_kernel(tiny_qwen2_dir, monkeypatch, caplog):
    from inference.attention import get_backend
    from inference.models.loader import load_model

    model = load_model(tiny_qwen2_dir, backend=get_backend("sdpa"), dtype=torch.float32).model

    def missing(*args, **kwargs):
        raise RuntimeError("Could not run '_weight_int4pack_mm_for_cpu' with arguments from the 'CPU' backend")

    monkeypatch.setattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu", missing)
    with caplog.at_level(logging.INFO, logger="inference.autotune"):
        plan = autotune.measure(model, torch.float32, thread_counts=[1])
    assert "int4 packed kernel unavailable" in caplog.text
    assert not any(k.startswith("int4@") for k in plan.table)
    assert {"dense@1t/M1", "int8@1t/M1", f"dense@1t/M{PREFILL_ROWS}"} <= set(plan.table)
    # our own int4 x int8 kernel does not use torch's: measured wherever it can run
    assert any(k.startswith("int4x8@") for k in plan.table) == kernels.available()
    assert (f"int8x8@1t/M{PREFILL_ROWS}" in plan.table) == kernels.available()  # our prefill GEMM
    assert plan.decode != "int4" and plan.source == "autotune"


def test_a_packed_kind_slower_than_dense_at_one_row_is_not_timed_further(tiny_qwen2_dir, monkeypatch):
    from inference.attention import get_backend
    from inference.models.hybrid_linear import PackedWeight
    from inference.models.loader import load_model

    model = load_model(tiny_qwen2_dir, backend=get_backend("sdpa"), dtype=torch.float32).model
    matmul = PackedWeight.matmul

    def slow_int8(self, x):
        if self.kind == "int8":
            import time

            time.sleep(0.002)  # far slower than the tiny dense layers
        return matmul(self, x)

    monkeypatch.setattr(PackedWeight, "matmul", slow_int8)
    plan = autotune.measure(model, torch.float32, thread_counts=[1])
    assert "int8@1t/M1" in plan.table and "dense@1t/M16" in plan.table
    assert not any(k.startswith("int8@") and not k.endswith("/M1") for k in plan.table)
    assert plan.decode != "int8"


def test_row_cost_interpolates_the_measured_decode_rows():
    plan = choose(table({"dense": 10.0, "int4": 3.0}), ["dense", "int4"], [1, 2])
    assert plan.row_cost(1) == 1.0 and plan.row_cost(4) == pytest.approx(4.0)
    assert plan.row_cost(2) == pytest.approx(2.0) and plan.row_cost(32) == pytest.approx(32.0)
    assert KernelPlan(decode="int4").row_cost(2) is None  # nothing measured


def test_contended_thread_counts_are_not_measured_further(tiny_qwen2_dir, monkeypatch):
    from inference.attention import get_backend
    from inference.models.loader import load_model

    model = load_model(tiny_qwen2_dir, backend=get_backend("sdpa"), dtype=torch.float32).model
    real_time = autotune._time

    def slow_with_two_threads(calls, rows, dtype, repeats=autotune.REPEATS):
        return real_time(calls, rows, dtype, 1) + (100.0 if torch.get_num_threads() == 2 else 0.0)

    monkeypatch.setattr(autotune, "_time", slow_with_two_threads)
    plan = autotune.measure(model, torch.float32, thread_counts=[1, 2])
    assert [k for k in plan.table if k.startswith("dense@2t")] == ["dense@2t/M1"]
    assert plan.decode_threads == 1 and plan.prefill_threads == 1


def test_a_configured_kind_measures_its_row_costs_for_speculation(tiny_qwen2_dir):
    """weight_quant hybrid_int8 is not autotuned, yet with speculation on the speculator learns what extra rows
    cost from a short timing of that kind alone (without it every draft row was assumed to cost a quarter step)."""
    from types import SimpleNamespace

    from inference.attention import get_backend
    from inference.models.loader import load_model

    model = load_model(tiny_qwen2_dir, backend=get_backend("sdpa"), dtype=torch.float32).model
    config = SimpleNamespace(weight_quant="hybrid_int8", prefill_quant="auto", device="cpu",
                             speculative=SimpleNamespace(method="ngram"))
    plan = autotune.plan_kernels(model, config, torch.float32)
    threads = torch.get_num_threads()
    assert plan.source == "config" and plan.decode == "int8" and plan.decode_threads is None
    assert set(plan.table) == {f"int8@{threads}t/M{r}" for r in autotune.DECODE_ROWS}
    assert plan.row_cost(1) == 1.0
    expected = plan.table[f"int8@{threads}t/M4"] / plan.table[f"int8@{threads}t/M1"]
    assert plan.row_cost(4) == pytest.approx(expected)
    config.speculative.method = "none"  # nothing weighs drafts: nothing measured at load
    assert autotune.plan_kernels(model, config, torch.float32).table == {}
    # a key from another thread count alongside: ambiguous, so no measured cost rather than a wrong one
    mixed = KernelPlan(decode="int8", table={**plan.table, "int8@99t/M1": 1.0, "int8@99t/M4": 2.0})
    assert mixed.row_cost(4) is None
