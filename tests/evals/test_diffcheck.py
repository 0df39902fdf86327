"""The EvalPlus-style differential checker, run in-process (it is plain stdlib code)."""

import json

import pytest

from evals.datasets import diffcheck as dc

REF = "def f(x):\n    return x * 2\n"


def spec(inputs, dataset="humaneval", entry="f", atol=0, task_id="HumanEval/0"):
    return json.dumps({"dataset": dataset, "task_id": task_id, "entry_point": entry, "inputs": inputs, "atol": atol})


def test_passes_and_fails():
    dc.run_diffcheck(lambda x: x + x, REF, spec([[1], [2.5], [[1, 2]]]))
    with pytest.raises(AssertionError, match="input #1"):
        dc.run_diffcheck(lambda x: 2 if x == 1 else 0, REF, spec([[1], [2]]))


def test_float_tolerance_and_atol():
    ref = "def f(x):\n    return x / 3\n"
    dc.run_diffcheck(lambda x: x / 3 + 1e-9, ref, spec([[1.0]]))
    with pytest.raises(AssertionError):
        dc.run_diffcheck(lambda x: x / 3 + 1e-3, ref, spec([[1.0]]))
    dc.run_diffcheck(lambda x: x / 3 + 1e-3, ref, spec([[1.0]], atol=1e-2))


def test_candidate_cannot_mutate_inputs_seen_by_reference():
    ref = "def f(xs):\n    return sum(xs)\n"

    def cand(xs):
        total = sum(xs)
        xs.clear()
        return total

    dc.run_diffcheck(cand, ref, spec([[[1, 2, 3]], [[4]]]))


def test_per_input_time_limit():
    import time

    with pytest.raises(AssertionError, match="timed out"):
        dc.run_diffcheck(lambda x: time.sleep(5), REF, spec([[1]]), min_limit_s=0.2)


def test_special_oracles():
    poly_ref = "def find_zero(xs):\n    return 1.0\n"
    dc.run_diffcheck(lambda xs: 1.0 + 1e-9, poly_ref, spec([[[-1.0, 1.0]]], entry="find_zero"))
    with pytest.raises(AssertionError):
        dc.run_diffcheck(lambda xs: 2.0, poly_ref, spec([[[-1.0, 1.0]]], entry="find_zero"))
    import re

    ref = "import re\ndef check_str(s):\n    return re.match('a', s)\n"
    dc.run_diffcheck(lambda s: re.match("a", s), ref, spec([["abc"], ["b"]], "mbpp", "check_str", 0, "Mbpp/737"))
    dc.run_diffcheck(lambda s: s.startswith("a"), ref, spec([["abc"], ["b"]], "mbpp", "check_str", 0, "Mbpp/737"))


def test_mbpp_types_restored():
    assert dc.mbpp_restore_types("Mbpp/2", [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert dc.mbpp_restore_types("Mbpp/124", [["1.5", "1+2j"]]) == [(1.5, 1 + 2j)]
    assert dc.mbpp_restore_types("Mbpp/3", [[1]]) == [[1]]
