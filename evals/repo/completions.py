"""Completions for FIM tasks, made exactly as the editor makes them (or by the llama-server peer).

Our path: ``lsp.completer.Completer.complete`` (the inline-completion feature's own context building with
snippets from the task's repository, the LSP's engine client, ``lsp/postprocess.py``), through the
in-process engine (``--model``) or a running ``codeloop serve`` (``--engine-url``, the LSP's HTTP client).
The peer: llama.cpp's ``/infill`` asked with llama.vscode's request and scored on what llama.vscode shows
of the reply, or untrimmed (evals/repo/infill.py ``PeerOptions``), given the snippets our retriever picks
for the same cursor.

Each finished completion is appended to the run's ``generations.jsonl`` at once, so a killed run keeps it;
an engine failure is recorded (``error``) with an empty completion and the run goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.repo import infill
from evals.repo.infill import InfillClient, PeerOptions
from evals.repo.task import FimTask
from lsp.checks.checker import Checker
from lsp.completer import Completer
from lsp.config import Settings
from lsp.context import CompletionContext
from lsp.engine_client import EngineClient
from lsp.http_client import HttpClient
from lsp.inprocess_client import InProcessClient
from lsp.snippets import SnippetIndex
from lsp.sources import Sources
from lsp.suggestion import Document


@dataclass(frozen=True)
class EngineChoice:
    """Which engine answers: ``model`` in process, ``engine_url`` (codeloop serve) or ``infill_url``.
    ``engine_options``: the in-process engine's settings, or with ``infill_url`` the ``PeerOptions`` fields."""

    model: str | None = None
    engine_url: str | None = None
    infill_url: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.model, self.engine_url, self.infill_url)) != 1:
            raise ValueError("choose exactly one of --model, --engine-url, --infill-url")
        if self.infill_url:
            PeerOptions.from_dict(self.engine_options)

    def describe(self) -> str:
        if self.infill_url:
            return f"llama-server /infill at {self.infill_url} ({PeerOptions.from_dict(self.engine_options).client})"
        return f"codeloop serve at {self.engine_url}" if self.engine_url else f"{self.model} (in process)"


class Workspace:
    """One repository's snippet index, built as the language server builds it (Sources.scan_workspace)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        sources = Sources()
        sources.scan_workspace(str(self.root))
        self.index: SnippetIndex = sources.index

    def document(self, task: FimTask) -> Document:
        path = self.root / task.path
        return Document(path.as_uri(), str(path), task.document(), encoding="utf-16")


Record = dict[str, Any]


async def generate(tasks: list[FimTask], roots: dict[str, Path], engine: EngineChoice, settings: Settings,
                   concurrency: int, on_done: Callable[[Record], None], client: EngineClient | None = None) -> None:
    """Complete every task (``roots``: task source -> repository root); ``on_done`` gets each record.
    ``client``: the engine client to use instead of one made from ``engine`` (closed at the end)."""
    workspaces = {src: Workspace(root) for src, root in roots.items()}
    if client is None and not engine.infill_url:
        client = _client(engine)
    peer = InfillClient(engine.infill_url) if engine.infill_url else None
    peer_options = PeerOptions.from_dict(engine.engine_options) if engine.infill_url else PeerOptions()
    checked = settings.check.enabled is True  # checked suggestions: the same prompts, k checked candidates
    completers = {src: Completer(client or _NoEngine(), settings, str(w.root),
                                 Checker(str(w.root), settings.check) if checked else None)
                  for src, w in workspaces.items()}
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(task: FimTask) -> None:
        async with gate:
            ws, completer = workspaces[task.source], completers[task.source]
            start = time.perf_counter()
            try:
                record = await (_peer(peer, peer_options, completer, ws, task) if peer
                                else _ours(completer, ws, task, checked))
            except Exception as exc:  # noqa: BLE001 - one failed request must not end the run
                record = {"completion": "", "raw": "", "error": f"{type(exc).__name__}: {exc}"[:300]}
            record.update(task_id=task.task_id, sample_index=0, seconds=round(time.perf_counter() - start, 3))
            on_done(record)

    try:
        if client is not None:
            await client.ready()  # NOTE: an engine that cannot load ends the run; it is not 0% on every task
        await asyncio.gather(*(one(t) for t in tasks))
    finally:
        for completer in completers.values():
            if completer.checker is not None:
                completer.checker.close()
        if client is not None:
            await client.aclose()
        if peer is not None:
            await peer.aclose()


async def _ours(completer: Completer, ws: Workspace, task: FimTask, checked: bool = False) -> Record:
    start = time.perf_counter()
    done = await completer.complete(ws.document(task), task.line, task.character, ws.index, checked=checked)
    ctx = done.context
    record: Record = {"completion": done.text, "raw": done.raw, "mode": ctx.mode.value,
                      "prompt_chars": len(ctx.prompt), "snippets": [s.path for s in ctx.snippets]}
    if checked:
        note = done.check
        record["checked"] = None if note is None else {
            "summary": note.summary(), "status": note.status, "candidates": note.num_candidates,
            "passed": note.verdict.num_passed if note.verdict else 0, "total": note.verdict.num_checks if note.verdict else 0,
            "shown": done.shown, "changed": done.shown != done.text, "final_seconds": round(time.perf_counter() - start, 3)}
    return record


async def _peer(peer: InfillClient, options: PeerOptions, completer: Completer, ws: Workspace, task: FimTask) -> Record:
    ctx = await asyncio.to_thread(completer.context, ws.document(task), task.line, task.character, ws.index)
    got = await infill.answer(peer, task.document(), len(task.prefix), ctx.snippets, options)
    return {"completion": got.completion, "raw": got.raw, "mode": ctx.mode.value,
            "snippets": [s.path for s in ctx.snippets], "peer_client": options.client, **got.notes}


def editor_context(task: FimTask, workspace: Workspace, settings: Settings,
                   client: EngineClient | None = None) -> CompletionContext:
    """The context (prompt, snippets, mode) the editor builds for ``task``'s cursor, without an engine call:
    the repository RL task source samples from ``.prompt`` and cuts each sample with
    ``lsp.postprocess.finish(raw, context, settings.max_lines)``, exactly as the editor does. ``client``
    (anything with ``count_tokens`` / ``max_prompt_tokens``) lets the prompt shrink to fit a model."""
    completer = Completer(client or _NoEngine(), settings, str(workspace.root))  # type: ignore[arg-type]
    return completer.context(workspace.document(task), task.line, task.character, workspace.index)


def _client(engine: EngineChoice) -> EngineClient:
    if engine.engine_url:
        return HttpClient(engine.engine_url, timeout_s=600.0)
    assert engine.model is not None
    return InProcessClient(engine.model, engine_options=engine.engine_options)


class _NoEngine:
    """Stands in for an engine client where only context building is used (the peer's snippets)."""

    def max_prompt_tokens(self, max_tokens: int) -> None:
        return None

    def count_tokens(self, text: str) -> None:
        return None


NOT_SHAPING = ("engine_url", "api_key", "debounce_ms", "chat_max_tokens", "acceptance_log", "acceptance_log_path")
"""Settings that never change an eval's completions (the engine is named by ``FimEvalSpec.engine``)."""


def completion_settings(settings: Settings) -> dict[str, Any]:
    """The settings that shape the completions an eval scores, as saved in a run's identity and report: no
    secret, nothing about timing or chat, and the checked-suggestion settings only where checked suggestions
    are on (``check.enabled`` true), without the sandbox backend or deadline (the eval waits for the final
    choice). A run folder is then refused only when its completions could differ."""
    shaping = {k: v for k, v in asdict(settings).items() if k not in NOT_SHAPING and k != "check"}
    if settings.check.enabled is True:
        shaping["check"] = {"candidates": settings.check.candidates, "staged": settings.check.staged}
    return shaping
