"""The workspace test index: what it records, its background build, its refresh on save."""

from __future__ import annotations

import time

from lsp.checks.test_index import TestIndex, is_test_file, scan_source


def test_scan_records_functions_methods_calls_and_imports():
    refs = scan_source("tests/test_a.py", (
        "import pkg.utils\nfrom pkg.parse import parse as p\n\n"
        "def test_one():\n    assert pkg.utils.slug('A B') == 'a-b'\n\n"
        "class TestTwo:\n    def test_two(self):\n        assert p('x')\n    def helper(self):\n        pass\n\n"
        "def helper():\n    parse('x')\n"))
    assert [(r.node, r.line) for r in refs] == [("test_one", 4), ("TestTwo::test_two", 8)]
    assert refs[0].calls == {"slug"} and refs[1].calls == {"p"}
    assert {"pkg", "utils", "parse", "parse.parse"} <= refs[0].imports


def test_a_file_that_does_not_parse_has_no_tests():
    assert scan_source("tests/test_x.py", "def test_x(:\n") == []


def test_test_file_names():
    assert is_test_file("test_a.py") and is_test_file("a_test.py")
    assert not is_test_file("conftest.py") and not is_test_file("tests.py") and not is_test_file("test_a.txt")


def _wait(index: TestIndex, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not index.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    assert index.ready


def test_background_build_skips_virtualenvs_and_update_replaces_a_file(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "test_vendored.py").write_text("def test_v():\n    f()\n")
    test_file = tmp_path / "tests" / "test_f.py"
    test_file.write_text("def test_one():\n    f(1)\n\ndef test_two():\n    g(2)\n")
    index = TestIndex(str(tmp_path))
    index.start()
    _wait(index)
    assert [r.node for r in index.tests_calling("f")] == ["test_one"] and index.num_files == 1
    test_file.write_text("def test_three():\n    g(3)\n")
    index.update(str(test_file))
    assert index.tests_calling("f") == [] and [r.node for r in index.tests_calling("g")] == ["test_three"]
    test_file.write_text("x = 1\n")
    index.update(str(test_file))
    assert index.tests_calling("g") == [] and index.num_files == 0
    index.update(str(tmp_path / "module.py"))  # not a test file: ignored
    index.close()


def test_queries_answer_while_a_large_workspace_is_still_indexed(tmp_path):
    for i in range(3000):
        folder = tmp_path / f"pkg{i // 100}"
        folder.mkdir(exist_ok=True)
        (folder / f"test_m{i}.py").write_text(f"def test_{i}():\n    target({i})\n")
    index = TestIndex(str(tmp_path))
    index.start()  # returns at once: the build runs in a child process
    early = index.tests_calling("target")
    assert index.ready is False or len(early) == 3000  # a snapshot of what is indexed so far, never a wait
    _wait(index)
    assert len(index.tests_calling("target")) == 3000
    index.close()
