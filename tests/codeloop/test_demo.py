"""`codeloop demo`'s scripted editor against the real language server (tiny random model): the chat streams.

The pytest-lsp client of tests/lsp/ decodes ``$/progress`` itself; the demo has its own pygls client, which is
why the chat looked unstreamed in the demo (0 updates) while the lsp tests passed.
"""

from __future__ import annotations

import asyncio
import io

from lsprotocol import types as t
from rich.console import Console

from codeloop import demo
from sandbox.bwrap import available


def test_progress_message_reads_the_json_a_client_receives_and_typed_values():
    assert demo.progress_message({"kind": "report", "message": "def "}) == "def "
    assert demo.progress_message({"kind": "begin", "title": "codeloop chat", "message": "x"}) is None
    assert demo.progress_message({"kind": "end"}) is None
    assert demo.progress_message(t.WorkDoneProgressReport(message="f(x)")) == "f(x)"
    assert demo.progress_message(t.WorkDoneProgressBegin(title="codeloop chat", message="x")) is None


def test_demo_session_streams_the_chat_and_checks_is_prime(tiny_qwen2_dir):
    console = Console(file=io.StringIO(), width=200)
    session = asyncio.run(demo._editor_session(console, tiny_qwen2_dir))
    assert session.chat_text  # random text from the tiny model, checked by shape
    assert session.chat_progress, "the demo client saw no $/progress report for the chat"
    assert "".join(session.chat_progress) == session.chat_text
    shown = console.file.getvalue()
    assert f"{len(session.chat_progress)} streamed $/progress updates" in shown
    assert "def is_prime(n: int) -> bool:" in session.code
    if available() is None:  # is_prime has doctests: its block suggestion was checked in the sandbox
        final = session.check_results[-1]
        assert final["final"] is True and final["function"] == "is_prime"
        assert final["status"] in ("passed", "failed", "check_failed")  # the tiny model writes random text
        assert "checked against is_prime's doctests" in shown

