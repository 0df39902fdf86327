"""The checks of the function at the cursor: doctests, same-file asserts and tests, workspace tests."""

from __future__ import annotations

from lsp.checks.check import CheckKind
from lsp.checks.finder import find_checks
from lsp.checks.test_index import TestIndex
from tests.lsp.helpers import at_cursor

PRIMES = '''def is_prime(n):
    """True for primes.

    >>> is_prime(7)
    True
    >>> is_prime(8)
    False
    """
    |


def helper():
    return 1


assert is_prime(13)
assert helper() == 1


def test_small():
    assert not is_prime(1)


def test_with_fixture(tmp_path):
    assert is_prime(2)


if __name__ == "__main__":
    n = 91
    assert not is_prime(n)
'''


def find(marked: str, **kwargs):
    text, line, character = at_cursor(marked)
    return find_checks("/ws/primes.py", text, line, character, **kwargs)


def test_doctests_asserts_main_block_and_plain_tests_of_the_same_file():
    found = find(PRIMES)
    assert found is not None and found.function == "is_prime" and found.def_line == 0
    kinds = [(c.kind, c.name) for c in found.checks]
    assert kinds == [
        (CheckKind.DOCTEST, "doctest is_prime(7)"), (CheckKind.DOCTEST, "doctest is_prime(8)"),
        (CheckKind.ASSERT, "assert line 16"), (CheckKind.TEST, "test_small"), (CheckKind.ASSERT, "assert line 30"),
    ]
    main_block = found.checks[-1]
    assert main_block.source == "n = 91\nassert not is_prime(n)"
    assert found.checks[0].want == "True\n" and found.checks[0].line == 4


def test_a_function_without_checks_finds_nothing():
    assert find("def lonely(x):\n    |\n\n\nassert 1 + 1 == 2\n") is None


def test_a_cursor_outside_any_function_finds_nothing():
    assert find("x = 1\n|\n") is None


def test_a_half_typed_doctest_is_no_check():
    assert find('def f(x):\n    """>>> f(\n    """\n    |\n') is None


def test_workspace_tests_that_call_and_import_the_function(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_primes.py").write_text(
        "from primes import is_prime\n\ndef test_a():\n    assert is_prime(3)\n\n"
        "class TestMore:\n    def test_b(self):\n        assert not is_prime(4)\n\ndef test_other():\n    assert 1\n")
    (tmp_path / "tests" / "test_unrelated.py").write_text(
        "from other import is_prime\n\ndef test_c():\n    assert is_prime(3)\n")
    index = TestIndex(str(tmp_path))
    for path in (tmp_path / "tests").iterdir():
        index.update(str(path))
    text, line, character = at_cursor("def is_prime(n):\n    |\n")
    found = find_checks(str(tmp_path / "primes.py"), text, line, character, root=str(tmp_path), index=index)
    assert found is not None
    assert [(c.path, c.node) for c in found.checks] == [
        ("tests/test_primes.py", "test_a"), ("tests/test_primes.py", "TestMore::test_b")]
