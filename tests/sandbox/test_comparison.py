"""Type-strict judging of one assert: the worker's encoding of values and the judge's decision."""

from __future__ import annotations

import collections
import marshal
import math

import pytest

from sandbox.harness_exchange import harness_namespace

H = harness_namespace()
plain, judge, Opaque, validate, BadValue = H["plain"], H["judge"], H["Opaque"], H["validate"], H["BadValue"]
EQ_2 = ("cmp", ("Eq",), [("p", 0), ("k", 2)])


def test_plain_keeps_builtins_and_converts_subclasses_whose_equality_is_the_builtins():
    Point = collections.namedtuple("Point", "x y")

    class Text(str):
        pass

    value = {"c": collections.Counter("aab"), "o": collections.OrderedDict(a=1), "d": collections.defaultdict(int),
             "p": Point(1, 2), "t": Text("hi"), "n": [None, True, 1.5, 2j, b"x", frozenset({1})]}
    got = plain(value)
    assert got == value
    assert [type(got[k]) for k in "codpt"] == [dict, dict, dict, tuple, str]


def test_plain_copies_complex_and_bytes_subclasses_by_their_base_value():
    """The base's own value, whatever the subclass claims (and without complex/bytes methods of 3.11+ only)."""

    class Z(complex):
        real = property(lambda self: 99.0)

        def __complex__(self):
            return 5j

    class B(bytes):
        def __bytes__(self):
            return b"evil"

    got = plain([Z(1, 2), B(b"abc")])
    assert got == [1 + 2j, b"abc"] and [type(v) for v in got] == [complex, bytes]


def test_plain_refuses_objects_with_their_own_equality():
    class Int(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class Anything:
        pass

    for bad in (Int(3), Anything(), [1, Anything()], (x for x in ()), {1: object()}):
        with pytest.raises(TypeError):
            plain(bad)
    loop = []
    loop.append(loop)
    with pytest.raises(TypeError, match="recursive"):
        plain(loop)


def test_plain_takes_numpy_scalars_by_value():
    np = pytest.importorskip("numpy")
    got = plain([np.int64(3), np.float64(0.5), np.bool_(True)])
    assert got == [3, 0.5, True] and [type(v) for v in got] == [int, float, bool]
    with pytest.raises(TypeError):
        plain(np.array([1, 2]))


def test_judge_compares_with_python_semantics_on_builtin_values():
    assert judge(EQ_2, False, [2], None)[:2] == (True, "passed")
    assert judge(EQ_2, False, [2.0], None)[:2] == (True, "passed")  # 2 == 2.0, as Python and EvalPlus say
    assert judge(EQ_2, False, [3], None)[:2] == (False, "failed")
    nan = ("cmp", ("Eq",), [("p", 0), ("k", math.nan)])
    assert judge(nan, False, [math.nan], None)[0] is False


def test_judge_fails_opaque_values_against_builtin_expectations():
    holds, status, detail = judge(EQ_2, False, [Opaque("Anything")], True)
    assert (holds, status) == (False, "failed") and "Anything" in detail
    mixed = ("cmp", ("Eq",), [("p", 0), ("p", 1)])
    assert judge(mixed, True, [Opaque("Anything"), "abc"], True)[0] is False


def test_bare_asserts_over_non_builtin_values_keep_the_workers_verdict():
    both = ("cmp", ("Eq",), [("p", 0), ("p", 1)])
    assert judge(both, True, [Opaque("ndarray"), Opaque("ndarray")], True)[0] is True
    assert judge(("p", 0), True, [Opaque("bool_")], False)[0] is False
    with pytest.raises(BadValue):
        judge(("p", 0), True, [Opaque("X")], "yes")


def test_an_assert_that_raises_is_an_error():
    template = ("cmp", ("Lt",), [("call", "abs", [("bin", "Sub", ("p", 0), ("k", 2.5))], (), []), ("k", 1e-6)])
    holds, status, detail = judge(template, False, ["text"], None)
    assert (holds, status) == (False, "error") and detail.startswith("TypeError")


def test_validate_accepts_plain_data_only():
    assert validate(marshal.loads(marshal.dumps({(1, "a"): [frozenset({b"x"}), None, 1j]})))
    for bad in (compile("1", "<x>", "eval"), Ellipsis, [1, StopIteration]):
        with pytest.raises(BadValue):
            validate(bad)
