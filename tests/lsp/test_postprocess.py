"""Post-processing: where suggestion quality lives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.context import Mode
from lsp.postprocess import balance, finish, should_stop, strip_special, trim_stutter, trim_suffix_overlap

from .helpers import ctx


def test_single_line_keeps_only_the_first_line():
    c = ctx("def f(x):\n    y = |\n")
    assert c.mode is Mode.SINGLE_LINE
    assert finish("x + 1\n    return y\n", c) == "x + 1"


def test_single_line_trims_what_the_suffix_already_has():
    c = ctx("print(|)\n")
    assert finish("'hello')", c) == "'hello'"
    c = ctx("x = foo(|):\n")
    assert finish("a, b):", c) == "a, b"


def test_single_line_keeps_own_balanced_brackets_before_suffix_closer():
    c = ctx("print(|)\n")
    assert finish("foo()", c) == "foo()"
    assert finish("foo(1, bar())", c) == "foo(1, bar())"


def test_mismatched_closer_is_cut():
    c = ctx("x = [|\n")
    assert finish("1, 2)", c) == "1, 2"


def test_unrelated_suffix_text_is_not_trimmed():
    c = ctx("total = |  # sum\n")
    assert finish("a + b", c) == "a + b"


def test_overlap_with_plain_suffix_word_is_trimmed():
    c = ctx("return |value\n")
    assert finish("self.value", c) == "self."


def test_special_tokens_end_the_suggestion():
    c = ctx("x = |\n")
    assert finish("42<|endoftext|>garbage", c) == "42"
    assert finish("42<|file_sep|>b.py", c) == "42"
    assert strip_special("a<|fim_pad|>b") == "a"


def test_whitespace_only_result_is_empty():
    c = ctx("x = |\n")
    assert finish("   \n  ", c) == ""


def test_multi_line_on_empty_line_stops_at_dedent():
    c = ctx("def f(x):\n    |\n")
    assert c.mode is Mode.MULTI_LINE
    raw = "if x:\n        return 1\n    return 2\nprint(f(3))\n"
    assert finish(raw, c) == "if x:\n        return 1\n    return 2"


def test_multi_line_after_block_opener():
    c = ctx("def f(x):|\n")
    assert c.mode is Mode.MULTI_LINE
    raw = "\n    return x * 2\n\ndef g():\n    pass\n"
    assert finish(raw, c) == "\n    return x * 2"


def test_multi_line_keeps_closing_brace_of_opened_block():
    c = ctx("function f(x) {|\n")
    raw = "\n  return x;\n}\nfunction g() {}\n"
    assert finish(raw, c) == "\n  return x;\n}"


def test_multi_line_stops_at_blank_line_run():
    c = ctx("|\n")
    raw = "import os\nimport sys\n\n\n\nx = 1\n"
    assert finish(raw, c) == "import os\nimport sys"


def test_multi_line_respects_max_lines():
    c = ctx("|\n")
    raw = "".join(f"x{i} = {i}\n" for i in range(30))
    out = finish(raw, c, max_lines=5)
    assert out.count("\n") == 4 and out.startswith("x0 = 0")


def test_repeated_lines_are_dropped():
    c = ctx("def f():\n    |\n")
    raw = "print('a')\n    print('b')\n    print('b')\n    print('b')\n"
    assert finish(raw, c) == "print('a')\n    print('b')"
    raw = "a = 1\n    b = 2\n    a = 1\n    b = 2\n"
    assert finish(raw, c) == "a = 1\n    b = 2"


def test_stops_where_the_suffix_continues():
    c = ctx("def f():\n    |\n    return total\n")
    raw = "total = 0\n    return total\n"
    assert finish(raw, c) == "total = 0"


@pytest.mark.parametrize(
    ("marked", "raw", "stop"),
    [
        ("x = |\n", "1 + ", False),
        ("x = |\n", "1 + 2\n", True),
        ("def f():\n    |\n", "a = 1\n    b = 2\n", False),
        ("def f():\n    |\n", "a = 1\nprint(1)\n", True),
        ("x = |\n", "1<|endoftext|>", True),
    ],
)
def test_should_stop(marked, raw, stop):
    assert should_stop(raw, ctx(marked)) is stop


def test_should_stop_agrees_with_finish():
    """Once should_stop is True, more text never changes finish()."""
    c = ctx("def f(x):\n    |\n")
    raw = "if x:\n        return 1\n    return 2\nprint(f(3))\nmore = 1\n"
    for i in range(1, len(raw) + 1):
        if should_stop(raw[:i], c):
            assert finish(raw[:i], c) == finish(raw, c)
            break
    else:
        pytest.fail("never stopped")


LINES = ["a = 1", "    b = 2", "        if b:", "            return b", "", "    ", "return 3", "    x = [",
         "    ]", "        pass", "print(a)"]


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.sampled_from(LINES), min_size=1, max_size=10),
       cursor=st.sampled_from(["def f(x):\n    |\n", "class A:\n    def f(self):\n        |\n",
                               "def f(x):\n    |\n\n    return total\n", "items = [|\n"]),
       cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_a_stop_never_depends_on_how_the_text_arrived(pieces, cursor, cuts):
    """Streamed one character or several tokens at a time (speculative decoding appends several at once),
    the first prefix ``should_stop`` holds on finishes exactly as the whole text does."""
    c = ctx(cursor)
    raw = "\n".join(pieces) + "\n"
    ends = sorted({min(x, len(raw)) for x in cuts} | {len(raw)})
    for end in range(1, len(raw) + 1):  # one character at a time
        if should_stop(raw[:end], c):
            assert finish(raw[:end], c) == finish(raw, c)
            break
    for end in ends:  # a few characters at a time
        if should_stop(raw[:end], c):
            assert finish(raw[:end], c) == finish(raw, c)
            break


def test_one_blank_line_inside_a_block_does_not_end_it():
    c = ctx("def f(x):\n    |\n")
    assert not should_stop("y = 1\n\n", c)
    assert finish("y = 1\n\n    return y\n", c) == "y = 1\n\n    return y"
    assert should_stop("y = 1\n\n\n", c)


def test_balance_and_trim_helpers():
    assert balance("a, b)", "f(", ")") == "a, b"
    assert balance("a]", "f(", ")") == "a"
    assert trim_suffix_overlap("x)", "f(", ")") == "x"
    assert trim_suffix_overlap("g(x)", "f(", ")") == "g(x)"


def test_stuttering_line_is_cut():
    assert trim_stutter(" % % % % % % %") == " %"
    assert trim_stutter("abababababab") == "ab"
    assert trim_stutter("x = [0, 0, 0]") == "x = [0, 0, 0]"  # three repeats are legitimate code
    assert trim_stutter('sep = "========"') == 'sep = "========"'
    assert trim_stutter("s = '    '") == "s = '    '"  # whitespace runs are left alone
    assert finish(" % % % % % %\n", ctx("x =|\n")) == " %"


def test_the_indentation_the_prompt_left_out_comes_off_the_first_line():
    c = ctx("class A:\n    def f(self):\n        |\n")
    raw = "        if self.x:\n            return 1\n        return 2\n\n\n"
    assert finish(raw, c) == "if self.x:\n            return 1\n        return 2"
    assert finish("return 1", c) == "return 1"
    assert should_stop("        return 1\n    def g(self):\n", c)
    assert not should_stop("        return 1\n", c)
    # the model indented its first line one level short: the block moves with it
    assert finish("    if self.x:\n        return 1\n    return 2\n", c) == "if self.x:\n            return 1\n        return 2"


DEMO_LINE = "def primes_below(limit):\n    return [n for n in range(limit) if |\n\n\ndef run(cmd):\n    pass\n"


def test_a_finished_line_gets_the_closers_its_line_left_open():
    c = ctx(DEMO_LINE)
    assert c.mode is Mode.SINGLE_LINE
    assert finish("is_prime(n)\n", c) == "is_prime(n)]"  # the model ended the line without the "]"
    assert finish("is_prime(n)<|endoftext|>", c) == "is_prime(n)]"
    assert finish("is_prime(n)]\n", c) == "is_prime(n)]"  # closed by the model: nothing added
    assert finish("is_prime(n) for", c) == "is_prime(n) for"  # max_tokens, not the end of the line
    assert ctx("x = dict(a=[1, |\n").mode is Mode.SINGLE_LINE
    assert finish("2\n", ctx("x = dict(a=[1, |\n")) == "2])"


@pytest.mark.parametrize("marked, raw", [
    ("x = foo(a, |\n", "b,\n"),  # ends in a comma: the call goes on
    ("x = foo(a, |\n", "b +\n"),  # ends in an operator
    ("x = foo(|)\n", "a\n"),  # the line suffix closes it
    ("def f():\n    x = foo(a, |\n            c)\n", "b\n"),  # the next line continues the call
    ("def f():\n    x = foo(a, |\n    )\n", "b\n"),  # the next line closes it
    ("x = foo(a, |\n", "b\n        c)\n"),  # the model continues on the next line
])
def test_a_line_that_goes_on_is_not_closed(marked, raw):
    assert finish(raw, ctx(marked)) == raw.split("\n")[0].rstrip()
