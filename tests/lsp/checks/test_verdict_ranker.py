"""Reading sandbox results strictly, and choosing the candidate to show."""

from __future__ import annotations

import pytest

from lsp.checks.check import Check, CheckKind
from lsp.checks.ranker import Candidate, distinct, model_order, rank
from lsp.checks.verdict import Verdict, VerdictStatus, read_verdict
from sandbox.types import RunResult, RunStatus, TestOutcome, TestStatus

CHECKS = [Check(CheckKind.TEST, "test_a"), Check(CheckKind.TEST, "test_b"), Check(CheckKind.DOCTEST, "doctest f(1)")]
P, F, N = TestStatus.PASSED, TestStatus.FAILED, TestStatus.NOT_RUN


def result(status: RunStatus, statuses=(), messages=(), message: str = "") -> RunResult:
    msgs = list(messages) + [""] * (len(statuses) - len(messages))
    return RunResult(status, [TestOutcome(i, s, m) for i, (s, m) in enumerate(zip(statuses, msgs, strict=True))],
                     message=message)


def test_all_ran_and_passed_is_the_only_pass():
    v = read_verdict(result(RunStatus.PASSED, (P, P, P)), CHECKS)
    assert v.passed and v.summary() == "passes 3/3 tests"


@pytest.mark.parametrize("bad", [
    result(RunStatus.PASSED, (P, P)),                      # a missing outcome
    result(RunStatus.PASSED, (P, P, P, P)),                # one outcome too many
    result(RunStatus.PASSED, (P, N, P)),                   # a test that did not run
    result(RunStatus.TIMEOUT, (P, P), message="wall clock"),
    result(RunStatus.KILLED, (P, P, P), message="killed by SIGKILL"),
    result(RunStatus.ERROR, (P, P, P), message="result protocol violated: duplicate"),
    result(RunStatus.SANDBOX_ERROR, (), message="no sandbox"),
    result(RunStatus.ERROR, (N, N, N), message="the process exited (code 0) before the tests finished"),
])
def test_anything_short_of_a_full_pass_is_not_passing(bad):
    assert not read_verdict(bad, CHECKS).passed


def test_failures_name_the_first_real_failure_not_a_skip():
    r = result(RunStatus.FAILED, (P, F, F), ("", "RuntimeError: skipped: no db", "AssertionError: expected '1', got '2'"))
    v = read_verdict(r, CHECKS)
    assert v.status is VerdictStatus.FAILED and v.summary() == "fails doctest f(1): expected '1', got '2' (1/3 pass)"


def test_a_bare_assertion_keeps_its_kind():
    v = read_verdict(result(RunStatus.FAILED, (F, P, P), ("AssertionError",)), CHECKS)
    assert v.summary() == "fails test_a: AssertionError (2/3 pass)"


def test_import_errors_are_the_environment_and_syntax_errors_the_candidate():
    env = read_verdict(result(RunStatus.ERROR, (N, N, N), message="the code raised ModuleNotFoundError: No module named 'x'"), CHECKS)
    assert env.status is VerdictStatus.CHECK_FAILED and "does not import" in env.detail
    syntax = read_verdict(result(RunStatus.ERROR, (N, N, N), message='the code raised   File "/mnt/x.py", line 3\n'
                                                                       "    return (\n SyntaxError: '(' was never closed"), CHECKS)
    assert syntax.status is VerdictStatus.FAILED and syntax.detail.startswith("SyntaxError")


def test_timeout_summary():
    assert read_verdict(result(RunStatus.TIMEOUT, (P,), message="x"), CHECKS).summary() == "check failed: timeout"


def verdict(passed: int, total: int = 3) -> Verdict:
    status = VerdictStatus.PASSED if passed == total else VerdictStatus.FAILED
    return Verdict(status, passed, total)


def test_rank_all_passing_then_most_passing_then_log_prob():
    cands = [Candidate(0, "a", -1.0), Candidate(1, "b", -5.0), Candidate(2, "c", -2.0), Candidate(3, "d", -0.5)]
    verdicts = {0: verdict(1), 1: verdict(3), 2: verdict(2), 3: verdict(2)}
    assert [c.text for c in rank(cands, verdicts)] == ["b", "d", "c", "a"]


def test_rank_without_verdicts_or_log_probs_is_the_model_order():
    cands = [Candidate(0, "a"), Candidate(1, "b")]
    assert [c.text for c in rank(cands, {})] == ["a", "b"]
    assert [c.text for c in model_order([Candidate(0, "a", -3.0), Candidate(1, "b", -1.0)])] == ["b", "a"]


def test_distinct_drops_empty_and_repeated_texts_keeping_the_best():
    cands = [Candidate(0, "x", -3.0), Candidate(1, "x", -1.0), Candidate(2, "", 0.0), Candidate(3, "y", -2.0)]
    assert [(c.index, c.text) for c in distinct(cands)] == [(1, "x"), (3, "y")]


def test_doctest_examples_the_harness_can_judge_become_asserts():
    from lsp.checks.job import doctest_assert

    assert doctest_assert("f(2)\n", "4\n") == "assert repr((f(2))) == '4'"
    assert doctest_assert("f('a')\n", "'b'\n") == "assert repr((f('a'))) == \"'b'\""
    assert doctest_assert("f(1), f(2)  # both\n", "(1, 2)\n") == "assert repr(((f(1), f(2)))) == '(1, 2)'"
    for source, want in [("print(f(2))\n", "4\n"), ("x = f(2)\n", ""), ("f(2)\n", "4\n5\n"),
                         ("f(2)  # doctest: +ELLIPSIS\n", "4...\n"), ("f(-1)\n", "Traceback (most recent call last):\n"),
                         ("f(\n", "1\n"), ("f(2)\n", "")]:
        assert doctest_assert(source, want) is None, source
