"""`codeloop demo`: the main job end to end on the embedded model, through the real language server.

A scripted editing session drives `codeloop lsp` over stdio exactly as an editor does: open a file, ask
for a single-line and a multi-line inline completion, ask a chat question (streamed with `$/progress`),
receive security diagnostics; then the generated code runs against asserts in the sandbox.

``is_prime`` has doctests, so its multi-line suggestion is checked: the server runs its candidates against
them in the sandbox before it shows one, and tells the editor the result (``codeloop/checkResult``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax

DEMO_URI = "file:///demo/primes.py"
DEMO_FILE = '''import subprocess


def is_prime(n: int) -> bool:
    """Return True if n is a prime number.

    >>> [k for k in range(20) if is_prime(k)]
    [2, 3, 5, 7, 11, 13, 17, 19]
    >>> is_prime(97), is_prime(91)
    (True, False)
    """
    {multi}


def primes_below(limit: int) -> list[int]:
    return [n for n in range(limit) if {single}


def run(cmd: str) -> int:
    return subprocess.call("sh -c " + cmd, shell=True)
'''
DEMO_TESTS = [
    "assert is_prime(2) and is_prime(3) and is_prime(13) and is_prime(97)",
    "assert not is_prime(1) and not is_prime(0) and not is_prime(15) and not is_prime(91)",
    "assert primes_below(20) == [2, 3, 5, 7, 11, 13, 17, 19]",
]
CHAT_QUESTION = "In two sentences: what does functools.lru_cache do?"
"""NOTE: one question. Asked a two-part question ("..., and when should I avoid it?"), the embedded 0.5B answers
the first part in two sentences, then the second as a numbered list (5-11 sentences in each of 6 runs, whatever
the system prompt said about length); one question gets two sentences with seeds 0, 1 and 2. Measured
2026-12-02: docs/CLIENTS.md, "Chat: what the embedded 0.5B does with a requested length"."""
CHAT_TOKEN = "codeloop-demo-chat"
CHAT_SEED = 0
"""Sent with the chat request (its ``seed``): the answer is sampled with the model family's recommended
settings, and the seed makes the demo show the same one on every run."""
WARMUP_POSITION = (0, len("import "))
"""The first request (it waits while the model loads) asks here, not at a demo cursor: the same document
version and position would then be answered from the suggestion cache, and its time would be the cache's."""
CHECK_WAIT_S = 30.0
"""How long the demo waits for a check result that arrives after its suggestion."""


@dataclass
class EditorSession:
    """What the scripted editor got back: the file with both suggestions accepted, and the chat."""

    code: str = ""
    chat_text: str = ""
    chat_progress: list[str] = field(default_factory=list)
    """The text of each ``$/progress`` report on the chat's token, in order; joined, they are the answer."""
    check_results: list[dict[str, Any]] = field(default_factory=list)
    """The ``codeloop/checkResult`` notifications, in order."""


def progress_message(value: Any) -> str | None:
    """The text a ``$/progress`` report adds, or None for begin / end.

    NOTE: ``ProgressParams.value`` is LSPAny, so pygls hands a client the plain JSON dict, not a
    ``WorkDoneProgressReport``; reading ``.message`` off it finds nothing (the demo once showed 0 updates).
    """
    if isinstance(value, dict):
        return value.get("message") if value.get("kind") == "report" else None
    return getattr(value, "message", None) if getattr(value, "kind", None) == "report" else None


def run_demo(model: str, model_path: Path) -> None:
    """The scripted editing session on ``model`` (a pulled folder), then the sandbox check of its code."""
    console = Console()
    console.rule("[bold]codeloop demo")
    console.print(f"model: [bold]{model}[/] (sha256 verified) at {model_path}")
    session = asyncio.run(_editor_session(console, model_path))
    _sandbox_check(console, session.code)
    console.rule("[bold]done")


def _doc_text() -> str:
    return DEMO_FILE.replace("{multi}", "").replace("{single}", "")


def _cursor(marker: str) -> tuple[int, int]:
    """0-based (line, UTF-16 column) of ``marker`` in the demo file once markers are removed."""
    other = "{single}" if marker == "{multi}" else "{multi}"
    before = DEMO_FILE.replace(other, "").split(marker)[0]
    return before.count("\n"), len(before.rsplit("\n", 1)[-1])


async def _editor_session(console: Console, model_path: Path) -> EditorSession:
    from lsprotocol import types as t
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("codeloop-demo", "1.0")
    diagnostics: list[t.Diagnostic] = []
    session = EditorSession()

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _diags(params: t.PublishDiagnosticsParams) -> None:
        diagnostics[:] = params.diagnostics

    @client.feature(t.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def _create(params: t.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(t.PROGRESS)
    def _progress(params: t.ProgressParams) -> None:
        message = progress_message(params.value)
        if params.token == CHAT_TOKEN and message:
            session.chat_progress.append(message)

    @client.feature("codeloop/checkResult")
    def _checked(params: Any) -> None:
        from lsp.protocol import plain  # pygls hands a client namedtuples

        session.check_results.append(plain(params))

    await client.start_io(sys.executable, "-m", "codeloop", "lsp")
    caps = t.ClientCapabilities(
        text_document=t.TextDocumentClientCapabilities(inline_completion=t.InlineCompletionClientCapabilities()),
        window=t.WindowClientCapabilities(work_done_progress=True),
        experimental={"codeloop": {"checkResult": True}},  # this editor shows check results itself
    )
    start = time.perf_counter()
    with console.status("starting the language server and loading the engine"):
        await client.initialize_async(t.InitializeParams(capabilities=caps, process_id=None,
                                                         initialization_options={"model": str(model_path)}))
        client.initialized(t.InitializedParams())
        client.text_document_did_open(t.DidOpenTextDocumentParams(
            t.TextDocumentItem(uri=DEMO_URI, language_id="python", version=1, text=_doc_text())))
        await _inline(client, WARMUP_POSITION)  # the first request waits for the model to load
    console.print(f"language server ready in {time.perf_counter() - start:.1f} s")
    single = await _show_inline(console, client, "{single}", "single-line completion (mid-line)")
    multi = await _show_checked(console, client, session.check_results)
    session.chat_text = await _chat(console, client, session.chat_progress)
    await asyncio.sleep(0.5)
    _show_diagnostics(console, diagnostics)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    session.code = DEMO_FILE.replace("{multi}", multi.lstrip(" ")).replace("{single}", single)
    return session


async def _inline(client, where: str | tuple[int, int]):
    """Inline completion at a demo marker or a (line, character) position."""
    from lsprotocol import types as t

    line, col = _cursor(where) if isinstance(where, str) else where
    params = t.InlineCompletionParams(
        text_document=t.TextDocumentIdentifier(uri=DEMO_URI), position=t.Position(line=line, character=col),
        context=t.InlineCompletionContext(trigger_kind=t.InlineCompletionTriggerKind.Invoked))
    return await client.text_document_inline_completion_async(params)


async def _show_inline(console: Console, client, marker: str, title: str) -> str:
    start = time.perf_counter()
    result = await _inline(client, marker)
    seconds = time.perf_counter() - start
    items = result if isinstance(result, list) else (result.items if result else [])
    if not items:
        console.print(Panel("(no suggestion)", title=title))
        return ""
    item = items[0]
    text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
    line, col = _cursor(marker)
    replaced = col - item.range.start.character if item.range else 0
    text = text[replaced:]  # the item's range may cover indentation it repeats
    console.print(Panel(Syntax(text, "python"), title=f"{title}: {seconds * 1000:.0f} ms"))
    return text


async def _show_checked(console: Console, client, results: list[dict[str, Any]]) -> str:
    """The multi-line suggestion for ``is_prime``, checked against its doctests before it is shown; when the
    checks outlast the server's deadline, the result (and perhaps a better candidate) comes afterwards."""
    start = time.perf_counter()
    text = await _show_inline(console, client, "{multi}", "multi-line completion (empty line after a def)")
    shown = time.perf_counter()
    while results and not results[-1].get("final") and time.perf_counter() - shown < CHECK_WAIT_S:
        await asyncio.sleep(0.05)
    if not results:
        console.print(Panel("no check ran (no sandbox backend here: run scripts/sandbox_setup.sh --bwrap-only)",
                            title="checked suggestion"))
        return text
    final = results[-1]
    if final.get("changed"):  # as an editor does on the notification: ask again, the checked one is cached
        text = await _show_inline(console, client, "{multi}", "multi-line completion, after its checks")
    mark = {"passed": "[green]✓[/]", "failed": "[red]✗[/]"}.get(final.get("status", ""), "[yellow]![/]")
    console.print(Panel(f"{mark} {final.get('summary')}  ({final.get('candidates')} candidates, "
                        f"{time.perf_counter() - start:.1f} s)", title="checked against is_prime's doctests"))
    return text


async def _chat(console: Console, client, progress: list[str]) -> str:
    start = time.perf_counter()
    result = await client.protocol.send_request_async(
        "codeloop/chat", {"messages": [{"role": "user", "content": CHAT_QUESTION}], "textDocument": {"uri": DEMO_URI},
                          "seed": CHAT_SEED, "workDoneToken": CHAT_TOKEN})
    text = result["text"] if isinstance(result, dict) else getattr(result, "text", str(result))
    console.print(Panel(text.strip(), title=f"chat: {time.perf_counter() - start:.1f} s, "
                                             f"{len(progress)} streamed $/progress updates",
                        subtitle=CHAT_QUESTION))
    return text


def _show_diagnostics(console: Console, diagnostics) -> None:
    if not diagnostics:
        console.print(Panel("(none)", title="security diagnostics"))
        return
    from rich.markup import escape

    lines = [escape(f"line {d.range.start.line + 1}: [{d.code}] {d.message}") for d in diagnostics]
    console.print(Panel("\n".join(lines), title="security diagnostics from the language server"))


def _sandbox_check(console: Console, code: str) -> None:
    from sandbox import Limits, run

    console.print(Panel(Syntax(code, "python"), title="the file with both suggestions accepted"))
    result = run(code, DEMO_TESTS, Limits(timeout_s=10))
    passed = sum(t.status.value == "passed" for t in result.tests)
    note = f"  {result.message}" if result.message else ""
    console.print(Panel(f"status: [bold]{result.status.value}[/]  asserts passed: {passed}/{len(result.tests)}"
                        f"  ({result.duration_s * 1000:.0f} ms){note}", title="sandbox check of the generated code"))
