"""The Checker facade: a cheap "no checks" answer, the settings that turn it off, the index on save."""

from __future__ import annotations

from lsp.checks.checker import Checker, quick_name
from lsp.config import CheckSettings
from tests.lsp.helpers import at_cursor


def test_quick_name_finds_the_enclosing_def():
    lines = "class A:\n    def m(self):\n        x = 1\n        \n\ndef top():\n    pass".split("\n")
    assert quick_name(lines, 3) == "m" and quick_name(lines, 6) == "top"
    assert quick_name(["x = 1", ""], 1) is None and quick_name([], 5) is None
    assert quick_name(["def f(x):"], 0) == "f"


class FakeExecutorChecker(Checker):
    """A Checker whose sandbox is reported available (no probing)."""

    def active(self) -> bool:
        return self.settings.enabled is not False


def test_find_without_evidence_parses_nothing_and_finds_nothing(monkeypatch):
    import lsp.checks.checker as mod

    calls = []
    monkeypatch.setattr(mod, "find_checks", lambda *a, **k: calls.append(a))
    checker = FakeExecutorChecker(None, CheckSettings())
    text, line, character = at_cursor("def f(x):\n    |\n\nprint(f(2))\n")
    assert checker.find("/a.py", text, line, character) is None and calls == []


def test_find_with_a_doctest_and_the_off_switch():
    text, line, character = at_cursor('def f(x):\n    """\n    >>> f(2)\n    4\n    """\n    |\n')
    assert FakeExecutorChecker(None, CheckSettings()).find("/a.py", text, line, character) is not None
    assert FakeExecutorChecker(None, CheckSettings(enabled=False)).find("/a.py", text, line, character) is None


def test_saved_test_files_refresh_the_index(tmp_path):
    checker = FakeExecutorChecker(str(tmp_path), CheckSettings())
    test_file = tmp_path / "test_a.py"
    test_file.write_text("from a import f\n\ndef test_f():\n    assert f(1) == 2\n")
    checker.saved(str(test_file))
    text, line, character = at_cursor("def f(x):\n    |\n")
    found = checker.find(str(tmp_path / "a.py"), text, line, character)
    assert found is not None and [c.node for c in found.checks] == ["test_f"]
    checker.close()
