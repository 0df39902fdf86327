"""EvalSpec defaults follow each benchmark's official harness."""

from __future__ import annotations

from evals.spec import EvalSpec


def test_max_tokens_defaults_to_the_official_harness():
    assert EvalSpec(benchmark="bigcodebench").max_tokens == 1280
    assert EvalSpec(benchmark="humaneval").max_tokens == 512
    assert EvalSpec(benchmark="bigcodebench", max_tokens=300).identity()["max_tokens"] == 300


def test_timeout_defaults_to_the_official_harness():
    assert EvalSpec(benchmark="bigcodebench").run_timeout_s == 240.0
    assert EvalSpec(benchmark="mbppplus").run_timeout_s == 20.0



def test_greedy_identity_leaves_the_seed_out_and_keeps_engine_settings():
    a = EvalSpec(benchmark="mbppplus", seed=1, engine={"max_num_seqs": 64, "seed": 1})
    b = EvalSpec(benchmark="mbppplus", seed=2, engine={"max_num_seqs": 64, "seed": 2})
    assert a.identity() == b.identity()
    assert a.identity() != EvalSpec(benchmark="mbppplus", seed=1, engine={"max_num_seqs": 96, "seed": 1}).identity()
    sampled = dict(temperature=0.8, samples=2)
    assert EvalSpec(benchmark="mbppplus", seed=1, **sampled).identity() != EvalSpec(benchmark="mbppplus", seed=2,
                                                                                   **sampled).identity()
