"""RL tasks: MBPP sources, one assert per test, and sandbox validation (reference passes, wrong fails)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rl.filters import FilterReport
from rl.tasks import from_mbpp, split_asserts, validate, wrong_solution
from sandbox.types import RunResult, RunStatus
from tests.rl.helpers import add_task


def test_mbpp_sources_use_only_train_and_validation_ids():
    train, val = from_mbpp("train"), from_mbpp("validation")
    assert len(train) == 374 and len(val) == 90
    ids = [int(t.task_id.split("/")[1]) for t in train]
    assert min(ids) == 601 and max(ids) == 974
    assert all(t.tests and all(x.lstrip().startswith("assert") for x in t.tests) for t in train)
    with pytest.raises(ValueError, match="train or validation"):
        from_mbpp("test")


def test_split_asserts_and_wrong_solution():
    assert split_asserts("x = 1\nassert f(x) == 2\nassert f(2) == 3\n") == ("x = 1\nassert f(x) == 2", "assert f(2) == 3")
    assert split_asserts("assert (") == ()
    wrong = wrong_solution("import math\ndef f(a, b=2, *c, **d):\n    return math.pi\n", "f")
    assert wrong == "import math\ndef f(a, b=2, *c, **d):\n    return None\n"
    assert wrong_solution("def g(): pass", "f") is None
    assert wrong_solution("def (", "f") is None


def test_validate_in_the_sandbox():
    good = add_task(1)
    broken_ref = replace(add_task(2), task_id="broken", reference="def add2(x):\n    return x\n")
    weak = replace(add_task(3), task_id="weak", tests=("assert True",))
    crash = replace(add_task(4), task_id="crash", tests=("import os; os._exit(3)\nassert add4(1) == 5",))
    no_tests = replace(add_task(5), task_id="none", tests=())
    report = FilterReport()
    kept = validate([good, broken_ref, weak, crash, no_tests], report=report)
    assert [t.task_id for t in kept] == ["t/1"]
    assert report.dropped["asserts_accept_wrong_solution"] == ["weak"]
    assert report.dropped["no_asserts"] == ["none"]
    assert "broken" in report.dropped["reference_failed"]
    assert any("crash" in ids for reason, ids in report.dropped.items() if reason.startswith("reference_"))


def test_sandbox_failure_is_retried_once_then_skipped():
    calls = []

    def flaky(jobs, **kw):
        calls.append(len(jobs))
        fail = len(calls) == 1
        return [RunResult(RunStatus.SANDBOX_ERROR, message="daemon gone") if fail or i == 0
                else RunResult(RunStatus.PASSED if i % 2 == 0 else RunStatus.FAILED) for i in range(len(jobs))]

    report = FilterReport()
    kept = validate([add_task(1), add_task(2)], report=report, run_many=flaky)
    assert calls == [4, 4]  # everything failed once, retried once
    assert [t.task_id for t in kept] == ["t/2"] and report.dropped["sandbox_error"] == ["t/1"]
