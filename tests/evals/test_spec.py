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

