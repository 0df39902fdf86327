"""The GPU benchmark on a CPU: its engine parts drive the real Engine (tiny shapes), and without CUDA
`python -m bench.gpu OUT` skips every part and still writes its JSON (what scripts/gpu_check.sh runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.dummy_models import dummy_engine, dummy_model, model_config, timed_generate
from bench.gpu import PARTS, part_function, run_gpu_bench
from inference.engine import Engine


def test_dummy_engine_is_the_real_engine_and_generates_every_token():
    cfg = model_config("tiny", 256)
    engine = dummy_engine(dummy_model(cfg, "cpu"), cfg, "cpu", max_num_seqs=4, max_model_len=256)
    assert isinstance(engine, Engine) and engine.runner.graphs is None
    result = timed_generate(engine, [[1, 2, 3], list(range(40)), [9]], [2, 5, 3])
    assert result["generated_tokens"] == 10 and result["steps"] >= 5 and result["graph_steps"] == 0
    assert engine.stats().num_blocks_owned == 0


@pytest.mark.slow
def test_engine_parts_run_on_cpu_with_tiny_shapes():
    from bench.gpu_parts import part_batch64, part_decode_bs1, part_int8_kv_engine

    decode = part_decode_bs1("tiny", quick=True, device="cpu")
    assert decode["ours_eager_tok_s"] > 0 and decode["hf_generate_tok_s"] > 0 and decode["device"] == "cpu"
    assert decode["ours_prefill_tok_s"] > 0 and decode["hf_prefill_tok_s"] > 0
    batch = part_batch64("tiny", quick=True, device="cpu")
    assert batch["ours"]["generated_tokens"] == batch["useful_new_tokens"] and batch["hf_static_wall_s"] > 0
    kv = part_int8_kv_engine("tiny", quick=True, device="cpu")
    assert 0.5 < kv["int8_bytes_ratio"] < 0.6 and kv["int8"]["num_blocks"] > 1.7 * kv["bf16"]["num_blocks"]
    assert kv["bf16"]["generated_tokens"] == kv["int8"]["generated_tokens"] == batch["useful_new_tokens"]
    assert 0 <= kv["greedy_tokens_before_first_difference"] <= 1


def test_every_part_names_a_function():
    assert all(callable(part_function(p.func)) for p in PARTS)
    assert part_function("gpu_attention.part_prefill_attention").__module__ == "bench.gpu_attention"


def test_without_cuda_every_part_is_skipped_and_recorded(tmp_path):
    results = run_gpu_bench(tmp_path, cuda=False)
    assert results["parts"] == {p.name: {"skipped": "no CUDA device"} for p in PARTS}
    assert json.loads((tmp_path / "bench_gpu.json").read_text()) == results
    with pytest.raises(ValueError, match="unknown benchmark parts"):
        run_gpu_bench(tmp_path, parts=["nope"], cuda=False)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CPU machine's run")
def test_module_runs_on_a_cpu_machine(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.gpu", str(tmp_path), "--quick"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert all(v == {"skipped": "no CUDA device"} for v in json.loads(out.stdout)["parts"].values())
