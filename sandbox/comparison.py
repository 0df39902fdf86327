"""Judge side: decide one assert from the values the worker observed, with real builtins only.

Executed INSIDE the sandbox, in the judge process (stdlib only; concatenated into the harness
program by sandbox/harness_exchange.py, so it imports nothing of codeloop). See harness.py for the threat
model. An assert becomes a *template*: its comparison, arithmetic and constants stay here, and only
its *probes* (the sub-expressions that call into the code under test) are computed by the worker
and sent as plain data.

Invariants:
- Every value this module touches is a genuine builtin (``validate`` refuses anything else), so no
  ``__eq__``, ``__bool__``, ``__sub__`` or ``__float__`` of the code under test ever runs here.
- Type-strict: a probe the worker could not express as builtin data is an ``Opaque``; any operation
  that meets one fails the assert, unless the assert is *bare* (its probes compared with each other
  or tested for truth, nothing of it kept back from the worker) and every probe is opaque: then the
  worker's own Python verdict (``fallback``) stands, because nothing builtin was expected.
"""

import math
import operator
import reprlib

VALUE_TYPES = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)
COMPARE = {"Eq": operator.eq, "NotEq": operator.ne, "Lt": operator.lt, "LtE": operator.le, "Gt": operator.gt,
           "GtE": operator.ge, "Is": operator.is_, "IsNot": operator.is_not,
           "In": lambda a, b: operator.contains(b, a), "NotIn": lambda a, b: not operator.contains(b, a)}
BINARY = {"Add": operator.add, "Sub": operator.sub, "Mult": operator.mul, "Div": operator.truediv,
          "FloorDiv": operator.floordiv, "Mod": operator.mod, "Pow": operator.pow}
UNARY = {"Not": operator.not_, "USub": operator.neg, "UAdd": operator.pos}
JUDGE_FUNCTIONS = {"abs": abs, "round": round, "math.isclose": math.isclose, "math.fabs": math.fabs,
                   "math.isnan": math.isnan, "math.isinf": math.isinf, "math.isfinite": math.isfinite}
"""Functions the judge applies itself to probe values (arithmetic the code under test must not fake)."""
CONSTRUCTORS = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list, "dict": dict, "float": float,
                "int": int, "complex": complex, "str": str, "bytes": bytes, "bool": bool, "sorted": sorted,
                "range": range}
"""Builtins that build an expected value from constants (``set([1, 2])``, ``float('inf')``)."""
MATH_CONSTANTS = {"math.pi": math.pi, "math.e": math.e, "math.tau": math.tau, "math.inf": math.inf,
                  "math.nan": math.nan}


class Opaque:
    """A probe value that is not builtin data (an object of the code's own class, a generator...)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name):
        self.type_name = type_name


class NotBuiltin(Exception):
    """An operation met an Opaque value."""


class BadValue(Exception):
    """Data from the worker that no honest encoder produces: a protocol violation."""


def validate(value, max_items=10**7):
    """Raise BadValue unless ``value`` is built only of VALUE_TYPES (exact types; cycles allowed)."""
    seen, stack, count = set(), [value], 0
    while stack:
        v = stack.pop()
        count += 1
        if count > max_items:
            raise BadValue("value too large")
        t = type(v)
        if t not in VALUE_TYPES:
            raise BadValue(f"a {t.__name__} is not plain data")
        if t in (list, tuple, set, frozenset, dict) and id(v) not in seen:
            seen.add(id(v))
            stack.extend(v.items() if t is dict else v)  # dict items are (key, value) tuples
    return value


def evaluate(template, values, refs=None):
    """The value of ``template`` (a tree of tuples built by sandbox/asserts.py) over probe ``values``;
    ``refs`` holds the reference run's values of the ``same`` nodes, by slot (differential tests)."""
    kind = template[0]
    if kind == "k":
        return template[1]
    if kind == "p":
        return values[template[1]]
    if kind == "cmp":
        return _compare(template[1], [evaluate(t, values, refs) for t in template[2]])
    if kind == "bin":
        left, right = evaluate(template[2], values, refs), evaluate(template[3], values, refs)
        return BINARY[template[1]](*_only_data(left, right))
    if kind == "un":
        return UNARY[template[1]](*_only_data(evaluate(template[2], values, refs)))
    if kind == "call":
        fn = JUDGE_FUNCTIONS.get(template[1]) or CONSTRUCTORS[template[1]]
        args = _only_data(*[evaluate(t, values, refs) for t in template[2]])
        kwargs = dict(zip(template[3], _only_data(*[evaluate(t, values, refs) for t in template[4]]), strict=True))
        return fn(*args, **kwargs)
    if kind in ("tuple", "list", "set"):
        items = _only_data(*[evaluate(t, values, refs) for t in template[1]])
        return {"tuple": tuple, "list": list, "set": set}[kind](items)
    if kind == "dict":
        keys = _only_data(*[evaluate(t, values, refs) for t in template[1]])
        return dict(zip(keys, _only_data(*[evaluate(t, values, refs) for t in template[2]]), strict=True))
    if kind == "bool":
        return _boolean(template[1], template[2], values, refs)
    if kind == "same":
        if refs is None:
            raise ValueError("a differential assert needs a reference run")
        out, atol = _only_data(evaluate(template[2], values, refs), evaluate(template[3], values, refs))
        return same(out, _only_data(refs[template[1]])[0], atol)
    raise ValueError(f"unknown template node {kind!r}")


def _boolean(op, operands, values, refs):
    """``a or b`` / ``a and b`` with Python's result; the probes were all computed (plain names only)."""
    result = None
    for t in operands:
        result = _only_data(evaluate(t, values, refs))[0]
        if bool(result) == (op == "Or"):
            return result
    return result


def same(out, exp, atol):
    """EvalPlus's verdict for a differential test: equal, or (for floats, or with an ``atol``) close as
    ``numpy.testing.assert_allclose(out, exp, atol=atol)`` (rtol 1e-7; NaN matches NaN) over flattened
    lists and tuples; a float expectation gets ``atol`` 1e-6 when the task gives 0."""
    if out == exp:
        return True
    if atol == 0 and _is_floats(exp):
        atol = 1e-6
    return atol != 0 and _all_close(out, exp, atol)


def _is_floats(x):
    return type(x) is float or (type(x) in (list, tuple) and bool(x) and all(type(i) is float for i in x))


def _flatten(x):
    if type(x) in (list, tuple):
        for item in x:
            yield from _flatten(item)
    else:
        yield x


def _all_close(out, exp, atol, rtol=1e-7):
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


def same_values(template, values):
    """{slot: value} of the ``same`` nodes of ``template`` (what a reference run records)."""
    found = {}
    stack = [template]
    while stack:
        node = stack.pop()
        if type(node) is not tuple or not node or node[0] in ("k", "p"):
            continue
        if node[0] == "same":
            try:
                found[node[1]] = evaluate(node[2], values)
            except NotBuiltin as exc:
                found[node[1]] = Opaque(exc.args[0])
            continue
        for child in node[1:]:
            stack.extend(child if type(child) is list else [child])
    return found


def _compare(ops, operands):
    left = _only_data(operands[0])[0]
    for op, right in zip(ops, operands[1:], strict=True):
        _only_data(right)
        if not COMPARE[op](left, right):
            return False
        left = right
    return True


def _only_data(*values):
    for v in values:
        if type(v) is Opaque:
            raise NotBuiltin(v.type_name)
    return values


def judge(template, bare, values, fallback, refs=None):
    """(holds, status, detail) for one observation of an assert.

    ``status`` is "passed", "failed" (the assert does not hold) or "error" (evaluating it raised, as
    it would have in Python); ``detail`` explains a failure. ``bare`` says whether the worker's
    ``fallback`` may decide (see the module invariants).
    """
    opaque = [v for v in values if type(v) is Opaque]
    if bare and values and len(opaque) == len(values):
        if type(fallback) is not bool:
            raise BadValue("a bare assert over non-builtin values needs the worker's verdict")
        return fallback, ("passed" if fallback else "failed"), "" if fallback else "compared in the code's interpreter"
    try:
        holds = bool(evaluate(template, values, refs))
    except NotBuiltin as exc:
        return False, "failed", f"got a value of type {exc.args[0]}, not builtin data"
    except Exception as exc:  # noqa: BLE001 - the assert raised, as it would have in Python
        return False, "error", f"{type(exc).__name__}: {exc}"[:500]
    return holds, ("passed" if holds else "failed"), ""


def describe(values):
    """Short reprs of the probe values for a failure message (judge-side: values are plain data)."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 120
    parts = []
    for v in values:
        try:
            parts.append(f"<{v.type_name} object>" if type(v) is Opaque else short.repr(v))
        except ValueError:  # an int past the str conversion limit
            parts.append(f"<{type(v).__name__}>")
    return ", ".join(parts)
