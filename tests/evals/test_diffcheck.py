"""EvalPlus-style differential tests through the sandbox harness: the reference runs first in its own
process, the candidate's outputs must match it (unsafe_subprocess: the same harness, without isolation)."""

import pytest

from evals.datasets import diffcheck as dc
from evals.datasets.programs import diff_test
from sandbox.job_runner import run
from sandbox.types import Limits, RunStatus

REF = "def f(x):\n    return x * 2\n"


def check(code, inputs, reference=REF, dataset="humaneval", entry="f", atol=0, task_id="HumanEval/0"):
    program = diff_test(dataset, task_id, entry, inputs, atol, "base")
    return run(code, [program], Limits(timeout_s=20), backend="unsafe_subprocess", reference=reference)


def test_passes_and_fails():
    assert check("def f(x):\n    return x + x\n", [[1], [2.5], [[1, 2]]]).status is RunStatus.PASSED
    r = check("def f(x):\n    return 2 if x == 1 else 0\n", [[1], [2]])
    assert r.status is RunStatus.FAILED and "wrong output [run 2 of 2] (got 0)" in r.message, r
    assert "expected 4" in r.message


def test_float_tolerance_and_atol():
    ref = "def f(x):\n    return x / 3\n"
    assert check("def f(x):\n    return x / 3 + 1e-9\n", [[1.0]], ref).passed
    assert not check("def f(x):\n    return x / 3 + 1e-3\n", [[1.0]], ref).passed
    assert check("def f(x):\n    return x / 3 + 1e-3\n", [[1.0]], ref, atol=1e-2).passed


def test_candidate_cannot_mutate_inputs_seen_by_later_calls():
    ref = "def f(xs):\n    return sum(xs)\n"
    cand = "def f(xs):\n    total = sum(xs)\n    xs.clear()\n    return total\n"
    assert check(cand, [[[1, 2, 3]], [[1, 2, 3]]], ref).passed


def test_per_input_time_limit_comes_from_the_reference_run():
    r = check("import time\ndef f(x):\n    time.sleep(5)\n", [[1]])
    assert r.status is RunStatus.FAILED and "timed out after 1.00s" in r.message


def test_special_oracles():
    poly_ref = "def find_zero(xs):\n    return 1.0\n"
    assert check("def find_zero(xs):\n    return 1.0 + 1e-9\n", [[[-1.0, 1.0]]], poly_ref, entry="find_zero").passed
    assert not check("def find_zero(xs):\n    return 2.0\n", [[[-1.0, 1.0]]], poly_ref, entry="find_zero").passed
    ref = "import re\ndef check_str(s):\n    return re.match('a', s)\n"
    mbpp = dict(dataset="mbpp", entry="check_str", task_id="Mbpp/737")
    assert check("import re\ndef check_str(s):\n    return re.match('a', s)\n", [["abc"], ["b"]], ref, **mbpp).passed
    assert check("def check_str(s):\n    return s.startswith('a')\n", [["abc"], ["b"]], ref, **mbpp).passed
    assert not check("def check_str(s):\n    return True\n", [["abc"], ["b"]], ref, **mbpp).passed
    sum_div = dict(dataset="mbpp", entry="sum_div", task_id="Mbpp/295")
    assert check("def sum_div(n):\n    return 0\n", [[8]], "def sum_div(n):\n    return 7\n", **sum_div).passed


TAMPERING = {
    "always_equal": "class Anything:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Anything()\n",
    "patch_the_reference_builtins": "import builtins\nbuiltins.abs = lambda x: 0\ndef f(x):\n    return 0\n",
    "forge_claims": "import gc, os\ndef f(x):\n    for o in gc.get_objects():\n"
                    "        if type(o).__name__ == 'Channel' and hasattr(o, 'send'):\n"
                    "            o.send(('end', 0, 'passed', '', ''))\n            os._exit(0)\n",
}


@pytest.mark.parametrize("name", TAMPERING)
def test_tampering_candidates_fail(name):
    ref = "def f(x):\n    return abs(x) * 2\n"
    r = check(TAMPERING[name], [[1], [-2]], ref)
    assert r.status is RunStatus.FAILED, r


def test_a_reference_that_fails_is_reported_not_blamed_on_the_candidate():
    r = check("def f(x):\n    return 1\n", [[1]], "def f(x):\n    raise ValueError('bad reference')\n")
    assert r.status is RunStatus.FAILED and "reference solution fails this test" in r.tests[0].message
    r = check("def f(x):\n    return 1\n", [[1]], "def f(:\n")
    assert r.status is RunStatus.ERROR and "reference solution did not run" in r.message


def test_mbpp_types_restored():
    assert dc.mbpp_restore_types("Mbpp/2", [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert dc.mbpp_restore_types("Mbpp/124", [["1.5", "1+2j"]]) == [(1.5, 1 + 2j)]
    assert dc.mbpp_restore_types("Mbpp/3", [[1]]) == [[1]]
