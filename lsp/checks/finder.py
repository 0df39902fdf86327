"""The checks of the function at the cursor: its doctests, asserts and test functions in the same file,
and the workspace tests that call it (from the ``TestIndex``). Cheap: one parse of the document, one
lookup in the index; no checks found means the caller goes on exactly as without this module.
"""

from __future__ import annotations

import ast
import doctest
import os
from collections.abc import Iterable

from lsp.checks.check import Check, CheckKind, FunctionChecks
from lsp.checks.site import FunctionSite, ModuleView, read_module
from lsp.checks.suite_checks import CoverageSource
from lsp.checks.test_index import TestIndex, TestRef, calls_name

MAX_DOCTESTS = 20
"""Doctest examples kept per function (the first ones)."""
MAX_WORKSPACE_TESTS = 8
"""Workspace tests kept per function (those in files named after the module first)."""


def find_checks(path: str, text: str, line: int, character: int, *, root: str | None = None,
                index: TestIndex | None = None, coverage: CoverageSource | None = None) -> FunctionChecks | None:
    """The checks of the function containing (line, character) (a Python index in the line); None when
    the cursor is in no function or the function has no checks. Workspace tests come from the coverage
    map when it knows the function, else from the static test index."""
    view = read_module(text, line, character)
    site = view.site
    if site is None:
        return None
    checks = doctests(site) + same_file(view, site)
    found = coverage.checks_for(path, site.qualname, line + 1) if coverage is not None else None
    suite = found[0] if found else None
    if found:
        checks += found[1]
    elif index is not None and root:
        rel = os.path.relpath(path, root)
        checks += [_test_check(t) for t in workspace_tests(index, site.name, rel)]
    if not checks:
        return None
    return FunctionChecks(site.qualname, site.def_line, tuple(checks), site.docstring, suite)


def doctests(site: FunctionSite) -> list[Check]:
    if not site.docstring or ">>>" not in site.docstring:
        return []
    try:
        examples = doctest.DocTestParser().get_examples(site.docstring)
    except ValueError:  # a malformed example (the user is still typing it)
        return []
    return [Check(CheckKind.DOCTEST, f"doctest {_short(e.source)}", e.source, e.want,
                  site.docstring_line + e.lineno, example=i)
            for i, e in enumerate(examples[:MAX_DOCTESTS]) if _compiles(e.source)]


def _compiles(source: str) -> bool:
    """False for an example still being typed (it would fail every candidate alike)."""
    try:
        compile(source, "<doctest>", "single")
    except (SyntaxError, ValueError):
        return False
    return True


def same_file(view: ModuleView, site: FunctionSite) -> list[Check]:
    """Top-level asserts that call the function, asserts in ``if __name__ == "__main__":`` (with the
    statements before them in that block), and argument-free ``test_*`` functions that call it."""
    out: list[Check] = []
    for stmt in view.statements:
        if isinstance(stmt, ast.Assert) and calls_name(stmt, site.name):
            out.append(_assert_check([stmt]))
        elif _is_main_block(stmt):
            out += _main_block_asserts(stmt.body, site.name)  # type: ignore[attr-defined]
        elif (isinstance(stmt, ast.FunctionDef) and stmt.name.startswith("test") and not _has_args(stmt)
              and calls_name(stmt, site.name)):
            out.append(Check(CheckKind.TEST, stmt.name, line=stmt.lineno, node=stmt.name))
    return out


def workspace_tests(index: TestIndex, name: str, rel_path: str) -> list[TestRef]:
    """Tests of other files that call ``name`` and import it from its module, or import the module; files
    named after the module first (``test_utils.py`` for ``utils.py``)."""
    module = os.path.splitext(os.path.basename(rel_path))[0]
    found = [t for t in index.tests_calling(name)
             if t.path != rel_path and (f"{module}.{name}" in t.imports or module in t.imports)]
    found.sort(key=lambda t: (module not in os.path.basename(t.path), t.path, t.line))
    return found[:MAX_WORKSPACE_TESTS]


def _test_check(ref: TestRef) -> Check:
    return Check(CheckKind.TEST, ref.node.replace("::", "."), line=ref.line, path=ref.path, node=ref.node)


def _main_block_asserts(body: Iterable[ast.stmt], name: str) -> list[Check]:
    out, setup = [], []
    for stmt in body:
        if isinstance(stmt, ast.Assert):
            if calls_name(stmt, name):
                out.append(_assert_check([*setup, stmt]))
        else:
            setup.append(stmt)
    return out


def _assert_check(stmts: list[ast.stmt]) -> Check:
    last = stmts[-1]
    source = "\n".join(ast.unparse(s) for s in stmts)
    return Check(CheckKind.ASSERT, f"assert line {last.lineno}", source, line=last.lineno)


def _is_main_block(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    parts = [stmt.test.left, *stmt.test.comparators]
    names = {p.id for p in parts if isinstance(p, ast.Name)}
    values = {p.value for p in parts if isinstance(p, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}


def _has_args(fn: ast.FunctionDef) -> bool:
    a = fn.args
    return bool(a.posonlyargs or a.args or a.vararg or a.kwonlyargs or a.kwarg or fn.decorator_list)


def _short(source: str, width: int = 40) -> str:
    first = source.strip().split("\n", 1)[0]
    return first if len(first) <= width else first[: width - 1] + "…"
