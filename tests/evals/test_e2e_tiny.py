"""End to end with the tiny random model: generation through our engine, execution in the sandbox.

The model's output is random text, so the score is (almost surely) 0, but every stage really runs:
continuous batching, prompt building, extraction, sandbox verdicts, JSONL, resume, summary, interop files.
"""

import json

import pytest

from evals.runner import evaluate
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
