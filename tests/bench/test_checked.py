"""``codeloop bench checked``: the task choice, and one short run on the tiny random model."""

from __future__ import annotations

import asyncio

import pytest

from bench.checked import CheckedBenchSpec, doctest_tasks, document, run_bench, summarize
from evals.datasets.humaneval import load_humaneval
from sandbox.bwrap import available


def test_only_functions_with_one_to_max_doctests_are_chosen():
    tasks = load_humaneval()
    chosen = doctest_tasks(tasks, 5)
    assert 0 < len(chosen) < len(tasks)
    text, line = document(chosen[0])
    assert text.split("\n")[line] == "    " and ">>>" in text
    assert len(doctest_tasks(tasks, 1)) < len(chosen)


def test_summary_leaves_the_warmup_out_of_latency():
    rows = [{"unchecked_ms": u, "checked_shown_ms": c, "checked_final_ms": c, "checked_generation_ms": c - 50,
             "unchecked_pass": p, "checked_pass": q, "shown_pass": q, "shown_passed_checks": q} for u, c, p, q in
            [(9000, 1, False, False), (9000, 1, False, False), (100, 300, False, True), (100, 500, True, True)]]
    s = summarize(rows)
    assert s["unchecked_pass_rate"] == 0.25 and s["checked_pass_rate"] == 0.5
    assert s["p50_added_shown_ms"] == 300 and s["shown_as_passing_but_failing_hidden_tests"] == 0
    assert s["p50_check_overhead_ms"] == 50


@pytest.mark.bwrap
@pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")
def test_a_short_run_on_the_tiny_model(tiny_qwen2_dir):
    spec = CheckedBenchSpec(model=str(tiny_qwen2_dir), limit=2, candidates=2, deadline_ms=200)
    tasks = doctest_tasks(load_humaneval(), 5)[:2]
    result = asyncio.run(run_bench(spec, tasks))
    assert result["num_tasks"] == 2
    for row in result["tasks"]:
        assert row["unchecked_ms"] > 0 and row["checked_final_ms"] >= row["checked_shown_ms"] >= 0
        assert row["num_checks"] in (None, 1, 2, 3, 4, 5)


def test_index_lag_scenario_from_the_command_line(capsys):
    import json

    from codeloop.cli import main

    assert main(["bench", "checked", "--index-files", "30"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_files"] == 30 and result["indexed"] == 30 and result["building_max_lag_ms"] >= 0


@pytest.mark.bwrap
@pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")
def test_sandbox_only_latency_checks_the_canonical_bodies():
    from bench.checked import check_latency

    spec = CheckedBenchSpec(limit=2, candidates=2)
    short = [t for t in doctest_tasks(load_humaneval(), 5) if t.task_id in ("HumanEval/0", "HumanEval/2")]
    result = asyncio.run(check_latency(short, spec))  # bodies within the editor's 12 lines
    assert result["num_tasks"] == 2 and result["passed"] == 2 and result["p50_ms"] > 0
