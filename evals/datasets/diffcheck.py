"""Differential tests for HumanEval+ and MBPP+ (EvalPlus semantics): helpers run INSIDE the sandbox.

A test program (``evals.datasets.programs.diff_test``) runs twice in the sandbox harness: first against the
task's reference solution, in a fresh process that never sees the candidate (the job's ``reference``), then
against the candidate. Each input's output goes through ``assert __codeloop_same__(out, atol)``: the
harness's judge keeps the reference's values and compares the candidate's with them by EvalPlus's rule
(exact equality, or ``allclose`` with the task's ``atol``; atol 1e-6 for float outputs when the task says
0; sandbox/comparison.py). The expected outputs are therefore never in the candidate's process.

This module only prepares each call: MBPP+ inputs get their tuples, sets and complex numbers back, every
call gets a deep copy of its input, and calls are timed: the reference run shares each input's time, and
the candidate gets ``max(min_limit_s, factor * that time)`` per input. Special oracles: HumanEval's
``find_zero`` is checked by the polynomial's value at the answer (``poly``), MBPP's ``are_equivalent``
accepts any answer, ``sum_div`` also accepts 0, and three MBPP tasks compare only "not None"
(``not_none``). Only the standard library is used.
"""

import copy
import json
import math
import signal
import sys
import time

NOT_NONE_ENTRY_POINTS = ("check_str", "text_match_three", "text_starta_endb")
DEFAULT_LIMIT_S = 10.0


class InputTimeout(BaseException):
    """Raised by SIGALRM: a BaseException so the candidate's ``except Exception`` cannot swallow it."""


def _on_alarm(signum, frame):
    raise InputTimeout()


def _tuples(x):
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


def mbpp_restore_types(task_id, inputs):
    """MBPP+ stores tuples, sets and complex numbers as JSON lists and strings: restore them per task."""
    n = int(str(task_id).split("/")[-1])
    tuple_args = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616,
                  630, 726, 740, 744, 809}
    nested = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
    if n in tuple_args:
        return [[tuple(a) for a in inp] for inp in inputs]
    if n in nested:
        return [[[tuple(b) for b in a] for a in inp] for inp in inputs]
    if n in (75, 413, 444, 753):
        return [[[tuple(b) for b in inp[0]], inp[1]] for inp in inputs]
    if n in (106, 750):
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if n == 115:
        return [[[set(i) if isinstance(i, list) and i else {} for i in inp[0]]] for inp in inputs]
    if n == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if n in (250, 405, 446, 617, 720, 763, 808):
        return [[tuple(inp[0]), *inp[1:]] for inp in inputs]
    if n in (259, 401, 445):
        return [[tuple(tuple(b) for b in a) for a in inp] for inp in inputs]
    if n == 278:
        return [[tuple(tuple(i) if isinstance(i, list) else i for i in inp[0])] for inp in inputs]
    if n == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in (580, 615, 791):
        return [_tuples(inp) for inp in inputs]
    return inputs


def timed_call(fn, args, limit_s):
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class Cases:
    """The inputs of one differential test and how to call a solution on each."""

    def __init__(self, spec_json, reference_run, share, shared, min_limit_s=1.0, factor=4.0):
        if hasattr(sys, "set_int_max_str_digits"):
            sys.set_int_max_str_digits(0)
        spec = json.loads(spec_json)
        self.name, self.inputs = spec["name"], spec["inputs"]
        if spec["dataset"] == "mbpp":
            self.inputs = mbpp_restore_types(spec["task_id"], self.inputs)
        self.reference_run, self.share, self.shared = reference_run, share, shared
        self.min_limit_s, self.factor = min_limit_s, factor

    def call(self, fn, i):
        """``fn`` on a copy of input ``i``: timed and the time shared in the reference run, under the
        per-input limit in the candidate's run (AssertionError when it runs out)."""
        args = copy.deepcopy(self.inputs[i])
        if self.reference_run:
            start = time.perf_counter()
            out = fn(*args)
            self.share((self.name, i), time.perf_counter() - start)
            return out
        limit_s = max(self.min_limit_s, self.factor * self.shared.get((self.name, i), DEFAULT_LIMIT_S))
        try:
            return timed_call(fn, args, limit_s)
        except InputTimeout:
            raise AssertionError(f"input #{i}: timed out after {limit_s:.2f}s") from None

    def poly(self, i, x):
        """HumanEval find_zero's oracle: the polynomial of input ``i`` evaluated at ``x``."""
        return sum(coeff * math.pow(x, k) for k, coeff in enumerate(self.inputs[i][0]))

    def not_none(self, out):
        """What EvalPlus compares for the "not None" MBPP tasks: the reference's output is stored as
        ``out is not None``; a candidate's bool is taken as it is."""
        if not self.reference_run and isinstance(out, bool):
            return out
        return out is not None
