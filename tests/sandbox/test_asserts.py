"""The judge's rewrite of asserts into sites, on the very program text the sandbox runs."""

from __future__ import annotations

import types

import pytest

from sandbox.harness_exchange import harness_namespace

H = harness_namespace()


def rewrite(source: str):
    return H["rewrite_test"](source, "<test 0>", 0, 0)


def consts(code: types.CodeType) -> list:
    out = []
    for c in code.co_consts:
        out += consts(c) if isinstance(c, types.CodeType) else [c]
    return out


def test_expected_constant_stays_in_the_judge():
    code, [site] = rewrite("assert solve(1) == 1234567\n")
    assert site.template == ("cmp", ("Eq",), [("p", 0), ("k", 1234567)])
    assert not site.bare and site.binding and site.mandatory and site.text == "solve(1) == 1234567"
    assert 1234567 not in consts(code) and H["SITE_SENTINEL"] in consts(code)


def test_constructors_of_constants_fold_and_conversions_of_probes_stay_probes():
    _, [site] = rewrite("assert tuple(candidate([5, 6])) == tuple([2, 6, 3])\n")
    assert site.template == ("cmp", ("Eq",), [("p", 0), ("k", (2, 6, 3))])
    _, [site] = rewrite("assert candidate(3) == (3 + 5, 2.0 / 4, -1, float('inf'), {1, 2})\n")
    assert site.template[2][1] == ("k", (8, 0.5, -1, float("inf"), {1, 2}))


def test_arithmetic_around_a_probe_is_judged():
    _, [site] = rewrite("assert abs(candidate(1.33) - 0.33) < 1e-06\n")
    assert site.template == ("cmp", ("Lt",), [("call", "abs", [("bin", "Sub", ("p", 0), ("k", 0.33))], (), []),
                                              ("k", 1e-06)])
    _, [site] = rewrite("import math\nassert math.isclose(f(2), 3.5, rel_tol=0.01)\n")
    assert site.template == ("call", "math.isclose", [("p", 0), ("k", 3.5)], ("rel_tol",), [("k", 0.01)])


def test_shadowed_names_are_not_trusted():
    _, [site] = rewrite("set = frozenset\nassert f() == set([1])\n")
    assert site.template == ("cmp", ("Eq",), [("p", 0), ("p", 1)]) and site.bare
    _, [site] = rewrite("import numpy as math\nassert math.isclose(f(), 1.0)\n")
    assert site.template == ("p", 0)


def test_and_splits_into_sites_or_stays_one_probe():
    _, sites = rewrite("assert f(1) == 2 and not f(3)\n")
    assert [s.template for s in sites] == [("cmp", ("Eq",), [("p", 0), ("k", 2)]), ("un", "Not", ("p", 0))]
    _, [site] = rewrite("assert f(1) == 2 or f(2) == 3\n")
    assert site.template == ("p", 0) and site.bare


def test_bare_sites_and_constant_asserts():
    _, [site] = rewrite("assert candidate(s) == s\n")
    assert site.bare and site.template == ("cmp", ("Eq",), [("p", 0), ("p", 1)])
    code, sites = rewrite("assert True, 'always'\nassert 1 == 1\n")
    assert sites == [] and "always" in consts(code)


SHAPES = """
def check(candidate):
    assert candidate(1) == 1
    for x in range(3):
        assert candidate(x) == x
    for x in inputs:
        assert candidate(x) == 0
    if flag:
        assert candidate(2) == 2
    try:
        assert candidate(3) == 3
    except AssertionError:
        pass
    with ctx():
        assert candidate(4) == 4

def unused(candidate):
    assert candidate(5) == 5

assert check(f) is None
check(f)
"""


def test_which_sites_are_mandatory_and_which_bind():
    _, sites = rewrite(SHAPES)
    flags = {s.line: (s.mandatory, s.binding) for s in sites}
    assert flags == {3: (1, True), 5: (3, True), 7: (0, True), 9: (0, True), 11: (0, False),
                     15: (0, False), 18: (0, True), 20: (1, True)}


@pytest.mark.parametrize("leave", ["return", "break"])
def test_an_early_exit_makes_later_sites_optional(leave):
    body = "    return\n" if leave == "return" else "    for _ in range(2):\n        break\n"
    _, [site] = rewrite(f"def check(c):\n{body}    assert c(1) == 1\n\ncheck(f)\n")
    assert not site.mandatory


def test_failing_site_raises_at_the_assert_line_with_its_message():
    code, _ = rewrite("x = 1\n\nassert f(x) == 2, f'wanted {x + 1}'\n")
    bound = H["bind_sites"](code, lambda site_id, probes, bare, sync: False)
    with pytest.raises(AssertionError, match="wanted 2") as info:
        exec(bound, {"f": lambda v: v})
    assert info.traceback[-1].lineno + 1 == 3
