"""``codeloop complete FILE:LINE:COL --check``: the checked suggestion and its result in the terminal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sandbox.bwrap import available
from tests.lsp.checks.readable import needs_readable_pytest
from tests.lsp.fake_engine import FakeEngine, FakeServer

pytestmark = [pytest.mark.bwrap, pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")]

SOURCE = "def add(a, b):\n    @\n".replace("@", "")
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"


def complete(workspace, url: str, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "codeloop", "complete", f"{workspace / 'calc.py'}:2:5", "--engine-url", url, *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@needs_readable_pytest
def test_complete_check_prints_the_best_candidate_and_what_passed(workspace):
    (workspace / "pyproject.toml").write_text("[project]\nname = 'calc'\n")
    (workspace / "calc.py").write_text(SOURCE)
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_calc.py").write_text(TEST)
    engine = FakeEngine(answers={"": "return a - b\n\n\n"}, choices=["return a + b\n\n\n"],
                        delay_s=0.001)
    with FakeServer(engine) as server:
        plain = complete(workspace, server.url)
        checked = complete(workspace, server.url, "--check", "--candidates", "2")
        as_json = complete(workspace, server.url, "--check", "--candidates", "2", "--json")
    assert plain.returncode == 0 and plain.stdout == "return a - b\n" and plain.stderr == ""
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "return a + b\n" and checked.stderr.endswith("codeloop: passes 2/2 tests\n")
    data = json.loads(as_json.stdout)
    assert data["text"] == "return a + b" and data["check"]["summary"] == "passes 2/2 tests"
    assert data["check"]["passed"] == 2 and data["check"]["status"] == "passed"


def test_complete_check_where_there_is_nothing_to_check(workspace):
    (workspace / "calc.py").write_text(SOURCE)
    engine = FakeEngine(answers={"": "return a - b\n\n\n"}, delay_s=0.001)
    with FakeServer(engine) as server:
        out = complete(workspace, server.url, "--check")
    assert out.stdout == "return a - b\n" and "no checks found" in out.stderr


def test_too_many_candidates_is_a_usage_error(workspace):
    (workspace / "calc.py").write_text(SOURCE)
    out = complete(workspace, "http://127.0.0.1:9", "--check", "--candidates", "17")
    assert out.returncode == 2 and out.stderr == "codeloop: error: --candidates must be at most 16\n"
