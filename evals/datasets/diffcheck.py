"""Differential test used for HumanEval+ and MBPP+ (EvalPlus semantics), run INSIDE the sandbox.

The source of this module is embedded in each test program: it runs the task's reference solution and
the candidate on the same (deep-copied) inputs and compares outputs as EvalPlus does: exact equality, or
``allclose`` with the task's ``atol`` when the expected value is float-like (atol 1e-6 when the task says
0), plus EvalPlus's special oracles. Each candidate call gets a time limit of
``max(min_limit_s, factor * reference time)``. Only the standard library is used.
"""

import copy
import json
import math
import signal
import sys
import time

NOT_NONE_ENTRY_POINTS = ("check_str", "text_match_three", "text_starta_endb")


class InputTimeout(BaseException):
    """Raised by SIGALRM: a BaseException so the candidate's ``except Exception`` cannot swallow it."""


def _on_alarm(signum, frame):
    raise InputTimeout()


def is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return type(x).__name__ == "ndarray" and str(getattr(x, "dtype", "")) in ("float64", "float32")


def _flatten(x):
    if isinstance(x, (list, tuple)):
        for item in x:
            yield from _flatten(item)
    elif type(x).__name__ == "ndarray":
        yield from _flatten(x.tolist())
    else:
        yield x


def all_close(out, exp, atol: float, rtol: float = 1e-7) -> bool:
    """``numpy.testing.assert_allclose`` semantics (|out - exp| <= atol + rtol * |exp|) without numpy."""
    outs, exps = list(_flatten(out)), list(_flatten(exp))
    if len(outs) != len(exps):
        return False
    for o, e in zip(outs, exps, strict=True):
        try:
            if math.isnan(e) and math.isnan(o):
                continue
            if not abs(o - e) <= atol + rtol * abs(e):
                return False
        except TypeError:
            return False
    return True


def _poly(xs, x):
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def outputs_match(dataset, entry_point, inp, out, exp, atol) -> bool:
    """EvalPlus's verdict for one input (special oracles included)."""
    if dataset == "humaneval" and entry_point == "find_zero":
        return abs(_poly(inp[0], out)) <= max(atol, 1e-6)
    exact = out == exp
    if dataset == "mbpp":
        if entry_point == "are_equivalent":
            return True
        if entry_point == "sum_div":
            exact = exact or out == 0
        elif entry_point in NOT_NONE_ENTRY_POINTS:
            exact = (out == exp) if isinstance(out, bool) else (exp == (out is not None))
    if exact is True:
        return True
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    return atol != 0 and all_close(out, exp, atol)


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


def _timed_call(fn, args, limit_s):
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_diffcheck(candidate, reference_src, spec_json, min_limit_s=1.0, factor=4.0):
    """Raise AssertionError naming the first input on which ``candidate`` disagrees with the reference."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    spec = json.loads(spec_json)
    dataset, entry_point, atol = spec["dataset"], spec["entry_point"], spec["atol"]
    inputs = spec["inputs"]
    if dataset == "mbpp":
        inputs = mbpp_restore_types(spec["task_id"], inputs)
    namespace = {"__name__": "__reference__"}
    exec(reference_src, namespace)
    reference = namespace[entry_point]
    for i, inp in enumerate(inputs):
        start = time.perf_counter()
        exp = reference(*copy.deepcopy(inp))
        if dataset == "mbpp" and entry_point in NOT_NONE_ENTRY_POINTS:
            exp = exp is not None  # EvalPlus stores only whether the (unserializable) output is not None
        limit_s = max(min_limit_s, factor * (time.perf_counter() - start))
        try:
            out = _timed_call(candidate, copy.deepcopy(inp), limit_s)
        except InputTimeout:
            raise AssertionError(f"input #{i}: timed out after {limit_s:.2f}s") from None
        if not outputs_match(dataset, entry_point, inp, out, exp, atol):
            raise AssertionError(f"input #{i}: wrong output {str(out)[:200]!r}, expected {str(exp)[:200]!r}")
