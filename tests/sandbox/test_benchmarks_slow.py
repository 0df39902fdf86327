"""Canonical solutions of HumanEval (164/164) and MBPP's test split pass through the sandbox."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from sandbox.concurrent_runs import JobSpec, run_many
from sandbox.job_runner import resolve_backend
from sandbox.types import Limits, RunStatus

BENCH = Path(__file__).resolve().parents[3] / "shared/benchmarks"
HUMANEVAL = BENCH / "humaneval/HumanEval.jsonl.gz"
MBPP = BENCH / "mbpp/mbpp.jsonl"
LIMITS = Limits(timeout_s=30.0)
BACKEND = resolve_backend("auto")[0]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(BACKEND is None, reason="no isolating sandbox backend here")]


def _failures(jobs: list[JobSpec], names: list[str]) -> list[tuple[str, str, str]]:
    results = run_many(jobs, concurrency=2, progress=False, backend="auto")
    return [(n, r.status.value, r.message[:200]) for n, r in zip(names, results, strict=True)
            if r.status is not RunStatus.PASSED]


@pytest.mark.skipif(not HUMANEVAL.exists(), reason=f"missing {HUMANEVAL}")
def test_humaneval_canonical_solutions_pass():
    with gzip.open(HUMANEVAL, "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f]
    assert len(problems) == 164
    jobs = [JobSpec(p["prompt"] + p["canonical_solution"], p["test"] + f"\ncheck({p['entry_point']})\n", LIMITS)
            for p in problems]
    assert _failures(jobs, [p["task_id"] for p in problems]) == []


@pytest.mark.skipif(not MBPP.exists(), reason=f"missing {MBPP}")
def test_mbpp_test_split_canonical_solutions_pass():
    with open(MBPP, encoding="utf-8") as f:
        problems = [p for p in map(json.loads, f) if 11 <= p["task_id"] <= 510]
    assert len(problems) == 500
    jobs = [JobSpec(p["code"] + "\n" + p.get("test_setup_code", ""), p["test_list"], LIMITS) for p in problems]
    assert _failures(jobs, [str(p["task_id"]) for p in problems]) == []
