"""End to end with the tiny random model: generation through our engine, execution in the sandbox.

The model's output is random text, so the score is (almost surely) 0, but every stage really runs:
continuous batching, prompt building, extraction, sandbox verdicts, JSONL, resume, summary, official sample files.
"""

import json

import pytest

from evals.benchmark_runner import evaluate
from evals.spec import EvalSpec

pytest.importorskip("inference.engine")


def spec(tmp_path, model_dir, **kw):
    base = dict(benchmark="humaneval", model=str(model_dir), limit=3, max_tokens=16, run_dir=tmp_path / "run",
                progress=False, engine_options={"num_threads": 1})
    return EvalSpec(**{**base, **kw})


def test_tiny_model_pipeline_runs_and_resumes(tmp_path, tiny_qwen2_dir):
    s = spec(tmp_path, tiny_qwen2_dir, samples=2, temperature=0.8)
    summary = evaluate(s)
    assert summary.num_tasks == 3 and summary.num_results == 6
    assert set(summary.pass_at_k) == {"pass@1"} and 0.0 <= summary.pass_at_k["pass@1"] <= 1.0
    assert summary.prompt_mode == "chat"
    assert summary.tampering["num_samples"] == 6 and 0 <= summary.tampering["num_flagged"] <= 6
    results = (s.run_dir / "results.jsonl").read_text().splitlines()
    assert len(results) == 6
    keys = {(json.loads(x)["task_id"], json.loads(x)["sample_index"]) for x in results}
    assert len(keys) == 6
    samples = [json.loads(x) for x in (s.run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and all({"task_id", "completion", "solution"} <= set(x) for x in samples)
    assert json.loads((s.run_dir / "summary.json").read_text())["num_results"] == 6

    # kill simulation: drop the last two results, tear the new last line; resume redoes exactly those
    lines = results[:3] + [results[3][:20]]
    (s.run_dir / "results.jsonl").write_text("\n".join(lines))
    resumed = evaluate(EvalSpec(**{**s.__dict__, "resume": True}))
    after = (s.run_dir / "results.jsonl").read_text().splitlines()
    assert len(after) == 6 and resumed.num_results == 6
    assert len({(json.loads(x)["task_id"], json.loads(x)["sample_index"]) for x in after}) == 6


def test_tiny_model_completion_mode_mbpp(tmp_path, tiny_qwen2_dir):
    summary = evaluate(spec(tmp_path, tiny_qwen2_dir, benchmark="mbppplus", prompt_mode="completion", limit=2))
    assert summary.num_results == 2 and summary.prompt_mode == "completion"
    assert set(summary.per_test) == {"base", "plus"}
    assert summary.subsets["outside-train-validation"]["num_tasks"] == 2  # Mbpp/2 and Mbpp/3


def test_resume_under_other_engine_settings_is_refused(tmp_path, tiny_qwen2_dir):
    """Issue 23 defect 4: greedy bf16 answers depend on the batch, so a run (e.g. a base-model evaluation
    copied from another RL run) may only be continued by an engine with the same settings."""
    from evals.rundir import RunDirError

    first = spec(tmp_path, tiny_qwen2_dir, limit=1, max_tokens=4, engine_options={"num_threads": 1, "max_num_seqs": 64})
    evaluate(first)
    assert json.loads((first.run_dir / "run.json").read_text())["identity"]["engine"]["max_num_seqs"] == 64
    other = EvalSpec(**{**first.__dict__, "resume": True, "engine_options": {"num_threads": 1, "max_num_seqs": 96}})
    with pytest.raises(RunDirError, match="max_num_seqs"):
        evaluate(other)
    evaluate(EvalSpec(**{**first.__dict__, "resume": True}))  # the same settings resume


def test_a_passed_generator_records_its_engine_and_adapter(tmp_path, tiny_qwen2_dir):
    """The RL loop passes its own engine: the run's identity is that engine's settings and adapter weights."""
    from evals.generate import EngineGenerator
    from tests.inference.lora_helpers import make_peft_adapter

    make_peft_adapter(tiny_qwen2_dir, tmp_path / "a")
    gen = EngineGenerator.load(str(tiny_qwen2_dir), str(tmp_path / "a"), dtype="float32", max_num_seqs=8)
    evaluate(spec(tmp_path, tiny_qwen2_dir, limit=1, max_tokens=4, adapter="a"), generator=gen)
    engine = json.loads((tmp_path / "run" / "run.json").read_text())["identity"]["engine"]
    assert engine["max_num_seqs"] == 8 and engine["dtype"] == "float32" and len(engine["adapter_sha256"]) == 64
