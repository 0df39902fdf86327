"""``codeloop bench lsp``: replay a typing session through ``codeloop lsp`` over stdio and measure it.

The session types a function into a real file of 300+ lines (Python's own ``textwrap.py`` unless --file),
one inline request per keystroke, keystrokes 50-150 ms apart; like VS Code, a new keystroke cancels the
pending request. Reported: p50/p95 latency of answered requests (single-line and multi-line), requests
answered / cancelled / left unanswered, engine requests started vs aborted, typed-through cache hits and
prefix-cache hit rate.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp.percentile import percentile
from lsp.protocol import plain

FUNCTION = '''def count_words(text, min_len=1):
    """Count the words of at least min_len characters."""
    counts = {}
    for word in text.split():
        if len(word) >= min_len:
            counts[word] = counts.get(word, 0) + 1
    return counts
'''


@dataclass
class Sample:
    mode: str
    sent_s: float
    latency_ms: float | None = None
    outcome: str = "pending"
    """answered | cancelled | error | unanswered"""
    shown: str = ""


@dataclass
class Report:
    file: str
    num_lines: int
    num_keystrokes: int
    answered: int
    cancelled: int
    errors: int
    unanswered: int
    single_line: dict[str, Any] = field(default_factory=dict)
    multi_line: dict[str, Any] = field(default_factory=dict)
    engine_requests_started: int = 0
    engine_requests_aborted: int = 0
    typed_through_hits: int = 0
    typed_through_hit_rate: float = 0.0
    prefix_cache_hit_rate: float = 0.0
    engine_prefix_hit_rate: float | None = None
    engine_answers: dict[str, Any] = field(default_factory=dict)
    """Latency of the requests the engine answered (no cache hit), warm-up request left out."""
    wall_s: float = 0.0
    model: str | None = None


def typing_document(path: Path) -> tuple[list[str], int]:
    """(the lines of ``path`` with an empty line inserted after a blank line near line 300, its index): the
    session types ``FUNCTION`` from the start of the line after it."""
    lines = path.read_text(encoding="utf-8").split("\n")
    insert_at = min(len(lines) - 1, max(300, len(lines) // 2))  # the session types on the line after it
    while insert_at > 0 and lines[insert_at - 1].strip():  # start after a blank line
        insert_at -= 1
    return [*lines[:insert_at], "", *lines[insert_at:]], insert_at


def _summary(samples: list[Sample]) -> dict[str, Any]:
    return _percentiles([s.latency_ms for s in samples if s.outcome == "answered" and s.latency_ms is not None])


async def replay(path: Path, model: str | None, engine_url: str | None, max_keys: int | None,
                 seed: int, settings: dict[str, Any] | None = None,
                 pause: tuple[int, float] = (0, 0.0)) -> Report:
    """Type FUNCTION into ``path``; ``pause`` = (every N keystrokes, seconds) models a user who stops."""
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    lines, insert_at = typing_document(path)
    doc = "\n".join(lines)
    uri = f"file://{path.resolve().with_name('bench_' + path.name)}"
    client = LanguageClient("codeloop-bench", "0.1")
    cmd = [sys.executable, "-m", "codeloop", "lsp"] + (["--engine-url", engine_url] if engine_url else [])
    await client.start_io(*cmd)
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()),
        window=types.WindowClientCapabilities(work_done_progress=True))
    await client.initialize_async(types.InitializeParams(
        capabilities=caps, root_uri=path.resolve().parent.as_uri(),
        initialization_options={"model": None if engine_url else model, "engineUrl": engine_url,
                                **(settings or {})}))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=doc)))

    def params(line: int, col: int) -> types.InlineCompletionParams:
        return types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri), position=types.Position(line, col),
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic))

    # warm up: load the model and fill the prefix cache with the file, as opening it in an editor would
    await client.text_document_inline_completion_async(params(insert_at + 1, 0))
    rng = random.Random(seed)
    samples: list[Sample] = []
    pending: dict[str, tuple[asyncio.Future[Any], Sample]] = {}
    line, col, version = insert_at + 1, 0, 1
    typed = FUNCTION[:max_keys] if max_keys else FUNCTION
    started = time.perf_counter()

    def on_done(fut: asyncio.Future[Any], sample: Sample) -> None:
        sample.latency_ms = (time.perf_counter() - sample.sent_s) * 1000
        if fut.cancelled() or (fut.exception() and "cancel" in str(fut.exception()).lower()):
            sample.outcome = "cancelled"
        elif fut.exception():
            sample.outcome = "error"
        else:
            sample.outcome = "answered"
            items = getattr(fut.result(), "items", None) or []
            sample.shown = items[0].insert_text if items else ""

    for i, ch in enumerate(typed):
        for rid, (fut, _) in list(pending.items()):  # the editor cancels what the user typed past
            if not fut.done():
                client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=rid))
        pending.clear()
        version += 1
        pos = types.Position(line, col)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=ch)]))
        line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
        current = typed[: i + 1].split("\n")[-1]
        sample = Sample(mode="multi_line" if not current.strip() else "single_line", sent_s=time.perf_counter())
        rid = f"k{i}"
        fut = client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, params(line, col),
                                                 msg_id=rid)
        fut.add_done_callback(lambda f, s=sample: on_done(f, s))
        pending[rid] = (fut, sample)
        samples.append(sample)
        await asyncio.sleep(rng.uniform(0.05, 0.15))
        if pause[0] and (i + 1) % pause[0] == 0:
            await asyncio.sleep(pause[1])
    last = [f for f, _ in pending.values()]
    if last:
        await asyncio.wait(last, timeout=30)
    for s in samples:
        if s.outcome == "pending":
            s.outcome = "unanswered"
    wall = time.perf_counter() - started
    stats = await client.protocol.send_request_async("codeloop/stats", {})
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return _report(path, doc, samples, plain(stats), wall, model if not engine_url else engine_url)


def _report(path: Path, doc: str, samples: list[Sample], stats: dict[str, Any], wall: float,
            model: str | None) -> Report:
    count = {k: sum(1 for s in samples if s.outcome == k) for k in ("answered", "cancelled", "error", "unanswered")}
    comp, client, engine = stats.get("completer", {}), stats.get("client", {}), stats.get("engine", {})
    hits = comp.get("num_typed_through_hits", 0)
    return Report(
        file=str(path), num_lines=doc.count("\n") + 1, num_keystrokes=len(samples),
        answered=count["answered"], cancelled=count["cancelled"], errors=count["error"],
        unanswered=count["unanswered"],
        single_line=_summary([s for s in samples if s.mode == "single_line"]),
        multi_line=_summary([s for s in samples if s.mode == "multi_line"]),
        engine_requests_started=client.get("num_started", 0), engine_requests_aborted=client.get("num_aborted", 0),
        typed_through_hits=hits, typed_through_hit_rate=hits / max(1, comp.get("num_requests", 1)),
        prefix_cache_hit_rate=client.get("prefix_cache_hit_rate", 0.0),
        engine_prefix_hit_rate=engine.get("prefix_hit_rate"), wall_s=round(wall, 2), model=model,
        engine_answers=_percentiles(comp.get("engine_latency_ms", [])[1:]),
    )


def _percentiles(values: list[float]) -> dict[str, Any]:
    return {"answered": len(values), "p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95)}
