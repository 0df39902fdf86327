"""Which function the cursor is in, on documents that do not parse as they stand."""

from __future__ import annotations

from lsp.checks.site import read_module, top_level_chunks, with_hole
from tests.lsp.helpers import at_cursor


def site(marked: str):
    text, line, character = at_cursor(marked)
    return read_module(text, line, character).site


def test_empty_body_after_docstring_is_inside_the_function():
    s = site('import os\n\ndef is_prime(n):\n    """Doc.\n\n    >>> is_prime(2)\n    True\n    """\n    |\n\nx = 1\n')
    assert s is not None and s.name == "is_prime" and s.def_line == 2 and ">>> is_prime(2)" in s.docstring


def test_method_gets_its_class_in_the_qualified_name():
    s = site("class Parser:\n    def parse(self, text):\n        |\n")
    assert s is not None and s.qualname == "Parser.parse"


def test_cursor_after_a_block_opener_inside_a_function():
    s = site("def f(xs):\n    for x in xs:|\n    return 1\n")
    assert s is not None and s.name == "f"


def test_nested_function_belongs_to_the_top_level_function():
    assert site("def outer():\n    def inner():\n        |\n    return inner\n").name == "outer"


def test_module_level_cursor_has_no_site():
    assert site("import os\n|\n") is None
    assert site("x = [\n    1,\n|") is None


def test_an_unclosed_bracket_elsewhere_leaves_the_other_statements_readable():
    text, line, character = at_cursor("def f(n):\n    |\n\nbroken = (1,\n\nassert f(2) == 4\n")
    view = read_module(text, line, character)
    assert view.site is not None and view.site.name == "f"


def test_with_hole_keeps_line_numbers_on_an_empty_line():
    text = "def f():\n    \n"
    assert with_hole(text, 1, 4) == "def f():\n    pass\n"


def test_top_level_chunks_skip_triple_quoted_strings_and_keep_decorators():
    text = 'x = """\nnot a statement\n"""\n@dec\ndef f():\n    pass\n'
    starts = [start for start, _ in top_level_chunks(text)]
    assert starts == [0, 3]
