"""Check jobs in the real bubblewrap sandbox: what passes, what fails, and that the candidate (never the
file on disk) is what the workspace's tests import."""

from __future__ import annotations

import asyncio

import pytest

from lsp.checks.executor import CheckExecutor
from lsp.checks.finder import find_checks
from lsp.checks.job import ModuleName, build_job, module_name
from lsp.checks.test_index import TestIndex
from lsp.checks.verdict import VerdictStatus
from sandbox.bwrap import available
from tests.lsp.checks.readable import needs_readable_pytest

pytestmark = [pytest.mark.bwrap, pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")]

PRIMES = '''def is_prime(n):
    """True for primes.

    >>> is_prime(7)
    True
    >>> [k for k in range(10) if is_prime(k)]
    [2, 3, 5, 7]
    """
    {body}


assert is_prime(13)


def test_small():
    assert not is_prime(1)


if __name__ == "__main__":
    n = 91
    assert not is_prime(n)
'''
GOOD = "if n < 2:\n        return False\n    return all(n % d for d in range(2, int(n ** 0.5) + 1))"


def verdict(workspace, body: str, root=None, index=None, name: str = "primes.py", template: str = PRIMES):
    """The bwrap verdict of ``template`` with ``body`` at its ``{body}`` line, checked as ``workspace / name``."""
    path = workspace / name
    doc = template.replace("{body}", "")
    line = doc.split("\n").index("    ")
    checks = find_checks(str(path), doc, line, 4, root=str(root) if root else None, index=index)
    assert checks is not None
    job = build_job(checks, template.replace("{body}", body), str(path), str(root) if root else None)
    executor = CheckExecutor("bwrap")
    try:
        return asyncio.run(executor.run(job, checks.checks))
    finally:
        executor.close()


def test_a_right_body_passes_every_check(workspace):
    v = verdict(workspace, GOOD)
    assert v.status is VerdictStatus.PASSED and (v.num_passed, v.num_checks) == (5, 5)
    assert v.summary() == "passes 5/5 tests"


def test_a_wrong_body_fails_with_the_first_failing_check(workspace):
    v = verdict(workspace, "return n % 2 == 1")
    assert v.status is VerdictStatus.FAILED and v.num_passed == 2
    assert v.summary() == "fails doctest [k for k in range(10) if is_prime(k)]: expected '[2, 3, 5, 7]', " \
                          "got '[1, 3, 5, 7, 9]' (2/5 pass)"


def test_a_candidate_that_does_not_compile_fails(workspace):
    v = verdict(workspace, "return (")
    assert v.status is VerdictStatus.FAILED and v.num_passed == 0 and "SyntaxError" in v.detail


@needs_readable_pytest
def test_workspace_tests_import_the_candidate_not_the_file_on_disk(workspace):
    (workspace / "src" / "mathx").mkdir(parents=True)
    (workspace / "src" / "mathx" / "__init__.py").write_text("")
    (workspace / "src" / "mathx" / "primes.py").write_text(PRIMES.replace("{body}", "return True"))
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_primes.py").write_text(
        "import pytest\nfrom mathx.primes import is_prime\n\n"
        "@pytest.mark.parametrize('n', [2, 3, 5])\ndef test_primes(n):\n    assert is_prime(n)\n\n"
        "def test_composites():\n    assert not is_prime(15)\n")
    index = TestIndex(str(workspace))
    index.update(str(workspace / "tests" / "test_primes.py"))
    good = verdict(workspace, GOOD, root=workspace, index=index, name="src/mathx/primes.py")
    assert good.status is VerdictStatus.PASSED and good.num_checks == 7, good
    bad = verdict(workspace, "return n in (2, 3, 5, 7, 13, 15)", root=workspace, index=index, name="src/mathx/primes.py")
    assert bad.status is VerdictStatus.FAILED and bad.num_passed == 6, bad
    assert bad.detail.startswith("test_composites: assert not True"), bad
    assert (workspace / "src" / "mathx" / "primes.py").read_text() == PRIMES.replace("{body}", "return True")


def test_module_names(workspace):
    (workspace / "src" / "pkg" / "sub").mkdir(parents=True)
    for d in ("src/pkg", "src/pkg/sub"):
        (workspace / d / "__init__.py").write_text("")
    assert module_name(str(workspace), "src/pkg/sub/mod.py") == ModuleName("pkg.sub.mod", "src", False)
    assert module_name(str(workspace), "src/pkg/__init__.py").module == "pkg"
    assert module_name(str(workspace), "tool.py").module == "tool"
    assert module_name(str(workspace), "my-script.py").module == "_codeloop_candidate"


def test_the_documents_own_names_never_shadow_the_check_runtime(workspace):
    doc = ("import os as doctest\nmodule = setup = json = None\n\n\ndef codeloop_doctest(i):\n    return i\n\n\n"
           "def twice(n):\n    \"\"\"\n    >>> twice(2)\n    4\n    \"\"\"\n    {body}\n\n\nassert twice(3) == 6\n")
    v = verdict(workspace, "return 2 * n", root=workspace, name="names.py", template=doc)
    assert v.summary() == "passes 2/2 tests", v


def test_a_package_init_is_served_as_the_package(workspace):
    (workspace / "pkg").mkdir()
    (workspace / "pkg" / "helper.py").write_text("K = 3\n")
    doc = 'from .helper import K\n\n\ndef triple(n):\n    """\n    >>> triple(2), __file__.endswith("pkg/__init__.py")\n    (6, True)\n    """\n    {body}\n'
    (workspace / "pkg" / "__init__.py").write_text(doc.replace("{body}", "return 0"))
    v = verdict(workspace, "return K * n", root=workspace, name="pkg/__init__.py", template=doc)
    assert v.summary() == "passes 1/1 doctests", v
