"""Neovim renders a checked suggestion's result (editors/nvim): the notification becomes virtual text on
the function's def line, and the completion item's detail says what was checked. Real Neovim, the
scripted engine, the real bwrap sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.bwrap import available
from tests.lsp.fake_engine import FakeEngine, FakeServer
from tests.lsp.test_editors import _nvims, run_nvim

pytestmark = [pytest.mark.e2e, pytest.mark.bwrap,
              pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")]
SCRIPT = Path(__file__).parents[1] / "e2e" / "nvim_check.lua"
SOURCE = 'def double(n):\n    """\n    >>> double(4)\n    8\n    """\n    @\n'.replace("@", "")


@pytest.mark.parametrize(("nvim", "legacy"), _nvims())
def test_neovim_shows_the_check_result(workspace, nvim, legacy):
    (workspace / ".git").mkdir()
    src = workspace / "calc.py"
    src.write_text(SOURCE)
    engine = FakeEngine(answers={"": "return n + 3\n\n\n"}, choices=["return 2 * n\n\n\n"],
                        delay_s=0.001)
    with FakeServer(engine) as server:
        result = run_nvim(nvim, SCRIPT, workspace, server.url,
                          {"CODELOOP_FILE": str(src), "CODELOOP_LINE": "5", "CODELOOP_COL": "4"}, timeout_s=180)
    assert result.get("ok"), result.get("error") or result
    assert result["rendered"] is True and result["status"] == "passed"
    assert result["mark_line"] == 0 and result["mark_text"] == "codeloop ✓ passes 1/1 doctests"
    assert result["detail"] == "codeloop · passes 1/1 doctests"
