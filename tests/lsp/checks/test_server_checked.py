"""Checked suggestions through the real server (subprocess over stdio), a scripted engine whose greedy
answer in ``double`` and whose samples are known, and the real bwrap sandbox: what the editor is shown and told."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from sandbox.bwrap import available
from tests.lsp.fake_engine import FakeEngine, FakeServer
from tests.lsp.lsp_session import SERVER_COMMAND, inline_params, open_doc, start, stats, vscode_capabilities

pytestmark = [pytest.mark.bwrap, pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")]

DOC = '''def double(n):
    """Twice n.

    >>> double(2)
    4
    >>> double(-3)
    -6
    """
    @

def main():
    @
'''.replace("@", "")  # the cursor lines: indented, empty
IN_DOUBLE = '"""'  # the line above the cursor in ``double``: its greedy answer is scripted per test
WRONG, RIGHT, HANG = "return n + 2\n\n\n", "return 2 * n\n\n\n", "while True:\n        pass\n\n\n"


@pytest.fixture
def engine():
    fake = FakeEngine(answers={"": "return n * n\n\n\n"}, delay_s=0.001, chunk_chars=8)
    with FakeServer(fake) as server:
        yield fake, server


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    results: list[dict] = []

    @lsp_client.feature("codeloop/checkResult")
    def on_check(params):
        results.append(params)

    lsp_client.check_results = results  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def capabilities(renders: bool) -> types.ClientCapabilities:
    caps = vscode_capabilities()
    if renders:
        caps.experimental = {"codeloop": {"checkResult": True}}
    return caps


def field(params, name):
    return params[name] if isinstance(params, dict) else getattr(params, name)


async def open_in(client, workspace, server, caps, **check):
    await start(client, {"engineUrl": server.url, "debounceMs": 0, "check": {"backend": "bwrap", **check}},
                caps=caps, root=workspace)
    uri = (workspace / "calc.py").as_uri()
    (workspace / "calc.py").write_text(DOC)
    open_doc(client, uri, DOC)
    return uri


async def test_the_passing_candidate_is_shown_and_the_editor_is_told(client, workspace, engine):
    fake, server = engine
    fake.answers_after[IN_DOUBLE], fake.choices = WRONG, [RIGHT, WRONG, "return n\n\n\n"]
    uri = await open_in(client, workspace, server, capabilities(renders=True))
    result = await client.text_document_inline_completion_async(inline_params(uri, 8, 4))
    assert [i.insert_text for i in result.items] == ["    return 2 * n"]
    greedy, samples = fake.bodies[-2:]  # staged: the greedy one failed, so the other k - 1 were asked for
    assert greedy.get("n", 1) == 1 and greedy["temperature"] == 0.0
    assert samples["n"] == 3 and samples["temperature"] > 0 and samples["prompt"] == greedy["prompt"]
    for _ in range(50):
        if client.check_results:
            break
        await asyncio.sleep(0.02)
    (note,) = client.check_results
    assert field(note, "summary") == "passes 2/2 doctests" and field(note, "status") == "passed"
    assert field(note, "functionLine") == 0 and field(note, "final") is True
    s = await stats(client)
    assert s["completer"]["num_checked"] == 1 and s["completer"]["num_checked_passing"] == 1
    assert not [d for d in client.diagnostics.get(uri, []) if d.code == "codeloop.check"]


async def test_a_client_that_renders_nothing_gets_a_hint_on_the_function(client, workspace, engine):
    fake, server = engine
    fake.answers_after[IN_DOUBLE], fake.choices = WRONG, [WRONG]
    uri = await open_in(client, workspace, server, capabilities(renders=False), candidates=2)
    result = await client.text_document_inline_completion_async(inline_params(uri, 8, 4))
    assert [i.insert_text for i in result.items] == ["    return n + 2"]
    for _ in range(100):
        hints = [d for d in client.diagnostics.get(uri, []) if d.code == "codeloop.check"]
        if hints:
            break
        await asyncio.sleep(0.02)
    (hint,) = hints
    assert hint.severity == types.DiagnosticSeverity.Hint and hint.range.start.line == 0
    assert hint.message == "codeloop suggestion: fails doctest double(-3): expected '-6', got '-1' (1/2 pass)"


async def test_past_the_deadline_the_first_is_shown_unmarked_and_the_result_follows(client, workspace, engine):
    fake, server = engine
    fake.answers_after[IN_DOUBLE], fake.choices = WRONG, [RIGHT]
    uri = await open_in(client, workspace, server, capabilities(renders=True), candidates=2, deadlineMs=0)
    first = await client.text_document_inline_completion_async(inline_params(uri, 8, 4))
    assert [i.insert_text for i in first.items] == ["    return n + 2"]  # the model's first, unmarked
    for _ in range(300):
        if any(field(n, "final") for n in client.check_results):
            break
        await asyncio.sleep(0.02)
    pending, final = client.check_results
    assert field(pending, "status") == "pending" and field(pending, "summary") == "checking 2 candidates…"
    assert field(final, "status") == "passed" and field(final, "changed") is True
    assert field(final, "text") == "return 2 * n"
    again = await client.text_document_inline_completion_async(inline_params(uri, 8, 4))
    assert [i.insert_text for i in again.items] == ["    return 2 * n"]  # the editor asks again: the checked one


async def test_a_hanging_candidate_never_blocks_typing(client, workspace, engine):
    fake, server = engine
    fake.answers_after[IN_DOUBLE], fake.choices = HANG, [HANG]
    uri = await open_in(client, workspace, server, capabilities(renders=True), candidates=2, deadlineMs=100)
    warm = await client.text_document_inline_completion_async(inline_params(uri, 11, 4))  # first-use costs paid
    assert [i.insert_text for i in warm.items] == ["    return n * n"]
    first = await client.text_document_inline_completion_async(inline_params(uri, 8, 4))
    assert [i.insert_text for i in first.items] == ["    while True:\n        pass"]  # unmarked, at the deadline
    other = await client.text_document_inline_completion_async(inline_params(uri, 11, 0))  # a new engine request
    assert [i.insert_text for i in other.items] == ["return n * n"]
    assert not any(field(n, "final") for n in client.check_results)  # answered while the hang is timed out (5 s)
    for _ in range(400):
        if any(field(n, "final") for n in client.check_results):
            break
        await asyncio.sleep(0.02)
    final = [n for n in client.check_results if field(n, "final")][0]
    assert field(final, "summary") == "check failed: timeout" and field(final, "status") == "check_failed"


async def test_no_checks_or_checks_off_is_the_unchecked_request(client, workspace, engine):
    fake, server = engine
    uri = await open_in(client, workspace, server, capabilities(renders=True), enabled=False)
    result = await client.text_document_inline_completion_async(inline_params(uri, 8, 4))
    assert [i.insert_text for i in result.items] == ["    return n * n"]
    body = fake.bodies[-1]
    assert "n" not in body and body["temperature"] == 0.0
    main = await client.text_document_inline_completion_async(inline_params(uri, 11, 4))
    assert main.items and "n" not in fake.bodies[-1] and client.check_results == []


async def test_thousands_of_test_files_are_indexed_in_the_background(client, workspace, engine):
    fake, server = engine
    fake.answers_after[IN_DOUBLE], fake.choices = RIGHT, [RIGHT]
    for i in range(2000):
        folder = workspace / "tests" / f"t{i // 200}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"test_{i}.py").write_text(f"from calc import double\n\n\ndef test_{i}():\n    assert double({i}) == {2 * i}\n")
    uri = await open_in(client, workspace, server, capabilities(renders=True), candidates=2)
    first = await client.text_document_inline_completion_async(inline_params(uri, 8, 4))
    assert [i.insert_text for i in first.items] == ["    return 2 * n"]  # answered while the index builds
    for _ in range(600):
        checks = (await stats(client))["checks"]
        if checks["index_ready"]:
            break
        await asyncio.sleep(0.1)
    assert checks["index_ready"] and checks["index_files"] == 2000 and checks["backend"] == "bwrap"
