"""Rewards share one signature, come from the sandbox's per-test outcomes and are looked up by name."""

from __future__ import annotations

import pytest

from rl.rewards import REWARDS, RewardSpec
from sandbox.types import RunResult, RunStatus, TestOutcome, TestStatus


def _result(status: RunStatus, outcomes: list[TestStatus]) -> RunResult:
    return RunResult(status=status, tests=[TestOutcome(i, s) for i, s in enumerate(outcomes)])


def test_fraction_and_full_pass():
    half = _result(RunStatus.FAILED, [TestStatus.PASSED, TestStatus.FAILED])
    full = _result(RunStatus.PASSED, [TestStatus.PASSED, TestStatus.PASSED])
    assert REWARDS["fraction_passed"]("", "x = 1", half) == 0.5
    assert REWARDS["full_pass"]("", "x = 1", half) == 0.0
    assert REWARDS["full_pass"]("", "x = 1", full) == 1.0


def test_a_run_without_tests_passes_no_fraction_in_the_sandbox_and_the_reward_alike():
    """One definition: a run that ran no test (even one reported PASSED) passed a fraction of 0."""
    empty = _result(RunStatus.PASSED, [])
    assert empty.fraction_passed == 0.0
    assert REWARDS["fraction_passed"]("", "x = 1", empty) == 0.0
    assert REWARDS["fraction_passed"]("", None, None) == 0.0


def test_penalties():
    assert REWARDS["syntax_error"]("", "def f(:", None) == -1.0
    assert REWARDS["syntax_error"]("", "def f(): pass", None) == 0.0
    assert REWARDS["timeout"]("", "x", _result(RunStatus.TIMEOUT, [TestStatus.NOT_RUN])) == -1.0
    assert REWARDS["missing_code"]("I cannot help", None, None) == -1.0


def test_spec_orders_outcomes():
    spec = RewardSpec()
    passing, _ = spec("", "x = 1", _result(RunStatus.PASSED, [TestStatus.PASSED] * 3))
    partial, _ = spec("", "x = 1", _result(RunStatus.FAILED, [TestStatus.PASSED, TestStatus.FAILED,
                                                               TestStatus.FAILED]))
    broken, parts = spec("", "def f(:", _result(RunStatus.ERROR, [TestStatus.NOT_RUN] * 3))
    nothing, _ = spec("no code here", None, None)
    assert passing > partial > broken >= nothing
    assert parts["syntax_error"] == -1.0


def test_unknown_reward_name_is_rejected():
    with pytest.raises(ValueError, match="unknown rewards"):
        RewardSpec(weights=(("no_such_reward", 1.0),))
