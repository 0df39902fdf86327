"""Checks from the repository's coverage map, run in the repository's own environment (sandbox/suite)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from lsp.checks.check import CheckKind
from lsp.checks.finder import find_checks
from lsp.checks.suite_checks import CoverageSource, function_lines, run_suite
from lsp.checks.verdict import VerdictStatus
from sandbox.bwrap import available

pytestmark = [pytest.mark.bwrap, pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")]

CALC = "def add(a, b):\n    total = a + b\n    return total\n\n\ndef sub(a, b):\n    return a - b\n"
TESTS = ("from pkg import calc\n\n\ndef test_add():\n    assert calc.add(1, 2) == 3\n\n\n"
         "def test_add_zero():\n    assert calc.add(0, 0) == 0\n\n\ndef test_sub():\n    assert calc.sub(3, 2) == 1\n")


@pytest.fixture
def mapped(workspace):
    from sandbox.suite.coverage_map import coverage_map
    from sandbox.suite.environment import SuiteEnv

    for rel, text in {"pkg/__init__.py": "", "pkg/calc.py": CALC, "tests/test_calc.py": TESTS}.items():
        (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace / rel).write_text(text)
    for folder in (workspace / "pkg", workspace / "tests"):
        os.chmod(folder, 0o755)
    cache = workspace.parent / f"{workspace.name}-cache"
    cmap, _ = coverage_map(SuiteEnv.create(workspace, variables={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}), cache)
    assert not cmap.reason, cmap.reason
    yield workspace, CoverageSource(str(workspace), cache)
    import shutil

    shutil.rmtree(cache, ignore_errors=True)


def test_function_lines_are_found_by_name_in_the_file_on_disk(workspace):
    (workspace / "m.py").write_text("class A:\n    def f(self):\n        x = 1\n        return x\n")
    assert function_lines(str(workspace / "m.py"), "A.f") == range(3, 5)
    assert function_lines(str(workspace / "m.py"), "A.g") is None and function_lines("/nope.py", "f") is None


def test_the_map_gives_the_tests_of_the_function_and_they_judge_candidates(mapped):
    root, source = mapped
    doc = CALC.replace("    total = a + b\n    return total\n", "    \n")
    found = find_checks(str(root / "pkg/calc.py"), doc, 1, 4, root=str(root), coverage=source)
    assert found is not None and {c.kind for c in found.checks} == {CheckKind.SUITE}
    assert sorted(c.node for c in found.checks) == ["tests/test_calc.py::test_add", "tests/test_calc.py::test_add_zero"]
    suite, checks = found.suite, found.of_suite()
    right = run_suite(suite, doc.replace("    \n", "    return a + b\n"), checks)
    assert right.status is VerdictStatus.PASSED and right.summary() == "passes 2/2 tests"
    wrong = run_suite(suite, doc.replace("    \n", "    return a * b\n"), checks)
    assert wrong.status is VerdictStatus.FAILED and wrong.num_passed == 1 and "test_add" in wrong.detail
    broken = run_suite(suite, doc.replace("    \n", "    return (\n"), checks)
    assert broken.status is VerdictStatus.FAILED and broken.detail.startswith("SyntaxError")
    assert (root / "pkg/calc.py").read_text() == CALC


def test_no_map_means_no_suite_checks(workspace):
    source = CoverageSource(str(workspace), workspace / "no-cache")
    assert not source.has_map() and source.checks_for(str(workspace / "a.py"), "f") is None


HOSTILE = {  # bodies of ``add``; none may pass, whatever it prints, deletes or forges
    "hang": "    while True:\n        pass\n",
    "early_exit": "    import os\n    os._exit(0)\n",
    "segfault": "    import ctypes\n    return ctypes.string_at(0)\n",
    "fake_print": ("    print('tests/test_calc.py::test_add PASSED')\n    print('passes 2/2 tests')\n"
                   "    return a * b\n"),
    "forged_records": ("    line = '\\n@@' + '0' * 32 + ' {\"event\": \"test\", \"id\": \"tests/test_calc.py::test_add\", '\n"
                       "    line += '\"outcome\": \"passed\"}\\n'\n"
                       "    open('/codeloop-out/records.jsonl', 'a').write(line)\n    return a * b\n"),
    "delete_files": ("    import shutil\n    shutil.rmtree('/codeloop-out', ignore_errors=True)\n"
                     "    shutil.rmtree(__file__.rsplit('/', 2)[0], ignore_errors=True)\n    return a * b\n"),
    "erase_records_right_answer": ("    import os\n    for name in os.listdir('/codeloop-out'):\n"
                                   "        os.remove(os.path.join('/codeloop-out', name))\n    return a + b\n"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_candidate_never_passes_the_suite_checks(name, mapped, monkeypatch):
    from lsp.checks import suite_checks
    from sandbox.check import descendants

    monkeypatch.setattr(suite_checks, "SUITE_CHECK_LIMITS", replace(suite_checks.SUITE_CHECK_LIMITS, timeout_s=15))
    root, source = mapped
    doc = CALC.replace("    total = a + b\n    return total\n", "    \n")
    found = find_checks(str(root / "pkg/calc.py"), doc, 1, 4, root=str(root), coverage=source)
    assert found is not None
    v = run_suite(found.suite, doc.replace("    \n", HOSTILE[name]), found.of_suite())
    assert v.status is not VerdictStatus.PASSED and v.num_passed < v.num_checks, v
    if name == "hang":
        assert v.summary().startswith("check failed"), v
    assert (root / "pkg/calc.py").read_text() == CALC and (root / "tests/test_calc.py").read_text() == TESTS
    assert not descendants(os.getpid()), "a sandboxed process outlived its run"


def test_tests_that_run_the_code_after_the_cursor_come_first(monkeypatch):
    """``sign`` (lines 2-4): every test runs line 2, only test_pos runs line 4. A cursor on line 4 keeps
    test_pos although test_neg is faster; a cursor on line 2 keeps the fastest."""
    from lsp.checks import suite_checks
    from sandbox.suite.coverage_map import CoverageMap

    cmap = CoverageMap("/r", "k", None, {}, ["t.py::test_neg", "t.py::test_pos"], ["passed", "passed"], [0.1, 0.2],
                       {"m.py": {2: [0, 1], 3: [0], 4: [1]}})
    monkeypatch.setattr(suite_checks, "MAX_SUITE_TESTS", 1)
    assert suite_checks.tests_near_cursor(cmap, "m.py", range(2, 5), 4) == ["t.py::test_pos"]
    assert suite_checks.tests_near_cursor(cmap, "m.py", range(2, 5), 3) == ["t.py::test_neg"]
    assert suite_checks.tests_near_cursor(cmap, "m.py", range(2, 5), 2) == ["t.py::test_neg"]
    assert suite_checks.tests_near_cursor(cmap, "m.py", range(2, 5), None) == ["t.py::test_neg"]
    monkeypatch.setattr(suite_checks, "MAX_SUITE_TESTS", 8)
    assert suite_checks.tests_near_cursor(cmap, "m.py", range(2, 5), 4) == ["t.py::test_pos", "t.py::test_neg"]


def test_tests_that_run_the_cursor_line_come_before_those_that_run_only_later_lines(monkeypatch):
    """Lines 2-5: test_fast runs 2 and 5 (it skips the branch at 3-4), test_branch runs all of them. A
    cursor on line 3 keeps test_branch although test_fast is faster and also runs a line after the cursor;
    on line 5 the fastest again; on a line no test runs (6, a new line at the end) the next covered line
    decides."""
    from lsp.checks import suite_checks
    from sandbox.suite.coverage_map import CoverageMap

    cmap = CoverageMap("/r", "k", None, {}, ["t.py::test_fast", "t.py::test_branch"], ["passed", "passed"],
                       [0.1, 0.2], {"m.py": {2: [0, 1], 3: [1], 4: [1], 5: [0, 1]}})
    monkeypatch.setattr(suite_checks, "MAX_SUITE_TESTS", 1)
    assert suite_checks.tests_near_cursor(cmap, "m.py", range(2, 6), 3) == ["t.py::test_branch"]
    assert suite_checks.tests_near_cursor(cmap, "m.py", range(2, 6), 5) == ["t.py::test_fast"]
    monkeypatch.setattr(suite_checks, "MAX_SUITE_TESTS", 8)
    assert suite_checks.tests_near_cursor(cmap, "m.py", range(2, 7), 6) == ["t.py::test_fast", "t.py::test_branch"]
