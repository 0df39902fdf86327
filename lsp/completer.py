"""The completion pipeline shared by inline completion, the completion fallback and `codeloop complete`.

cache -> typed-through -> supersede older request -> debounce -> context -> engine stream (stopped early
when post-processing would cut the rest) -> post-process -> cache.

Invariants: at most one engine request per document is in flight (a newer request cancels the older
one's task, which aborts its engine stream); every request ends with a Suggestion, None, or an exception
(CancelledError when superseded or cancelled by the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

from lsp import context as ctxmod
from lsp import postprocess, prompt_fit
from lsp.cache import SuggestionCache
from lsp.checks.checker import Checker
from lsp.checks.note import CheckNote
from lsp.checks.selection import Selection
from lsp.completer_stats import CompleterStats
from lsp.config import Settings
from lsp.engine_client import EngineClient, Generation
from lsp.snippets import Snippet, SnippetIndex, pick
from lsp.suggestion import Completion, Document, Suggestion

MAX_RANKED_DOCS = 64
"""Documents whose last snippet ranking is kept (see ``Completer._ranked``)."""
CHECK_TEMPERATURE = 0.7
"""Sampling temperature of the k checked candidates but the first, which is the greedy suggestion an
unchecked request would show: checking can add passing candidates, never lose it."""


class Completer:
    """Suggestions for cursors in documents, through one engine client."""

    def __init__(self, client: EngineClient, settings: Settings, root: str | None = None,
                 checker: Checker | None = None, repo_adapters: bool = False) -> None:
        self.client = client
        self.settings = settings
        self.root = root
        self.checker = checker
        """Execution checks of block suggestions (None: never checked)."""
        self.repo_adapters = repo_adapters
        """Complete a document with its repository's promoted adapter (``client.adapter_for``) while the
        ``repoAdapters`` setting is on: the editor's path. Evals leave it off and name their adapter."""
        self.on_check: Any = None
        """Called with (document, suggestion) when a checked suggestion is chosen (before it is returned, so
        before any late result) and again when a late check result arrives."""
        self.cache = SuggestionCache()
        self.stats = CompleterStats()
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._late: dict[str, asyncio.Task[Any]] = {}
        self._late_generation: dict[str, Callable[[], None]] = {}
        """uri -> stops the samples a late result is still generating (its checks still finish)."""
        self._ranked: dict[str, tuple[str, list[Snippet]]] = {}
        """uri -> (query, ranking): reused while the query is unchanged, so edits elsewhere (which shift
        BM25 statistics a little) do not reshuffle the snippets that open the prompt."""

    async def suggest(self, doc: Document, line: int, character: int,
                      index: SnippetIndex | None = None) -> Suggestion | None:
        """The suggestion at (line, character); raises context.PositionError for a bad position."""
        start = time.perf_counter()
        self.stats.num_requests += 1
        s = self.settings
        cursor = ctxmod.resolve(doc.text, line, character, doc.encoding)
        hit = self._from_cache(doc, cursor, line, character)
        if hit is not None or not s.enable:
            return hit
        me = asyncio.current_task()
        older = self._inflight.get(doc.uri)
        if older is not None and older is not me and not older.done():
            older.cancel()
            self.stats.num_superseded += 1
        if me is not None:
            self._inflight[doc.uri] = me
        try:
            if s.debounce_ms:
                await asyncio.sleep(s.debounce_ms / 1000)
            stop = self._late_generation.pop(doc.uri, None)
            if stop is not None:  # a new engine request goes first: the older late result keeps what it has
                stop()
            await self.client.ready()
            adapter = await self.adapter_for(doc)
            t0 = time.perf_counter()
            ctx, checks = await asyncio.to_thread(self._context_and_checks, doc, line, character, index, cursor)
            self.stats.record("context_ms", t0)
            t0 = time.perf_counter()
            if checks is None:
                text, note = (await self._generate(ctx, adapter))[1], None
            else:
                text, note = await self._checked(doc, ctx, checks, cursor, line, character, adapter)
            self.stats.record("engine_ms", t0)
        except asyncio.CancelledError:
            self.stats.num_cancelled += 1
            raise
        except ctxmod.ContextTooSmall:
            self.stats.num_empty += 1  # no prompt fits this engine: nothing to suggest, not an error
            return None
        except Exception:
            self.stats.num_errors += 1
            raise
        finally:
            if self._inflight.get(doc.uri) is me:
                del self._inflight[doc.uri]
        self.stats.num_engine += 1
        self.stats.record("latency_ms", start)
        before, after = doc.text[: cursor.offset], doc.text[cursor.offset :]
        self.cache.put(doc.uri, doc.version, line, character, before, after, text)
        if not text:
            self.stats.num_empty += 1
            return None
        return Suggestion(text, line, character, cursor.line_prefix, "engine", ctx.mode, check=note, adapter=adapter)

    async def adapter_for(self, doc: Document) -> str | None:
        """The adapter ``doc`` is completed with: its repository's (see ``repo_adapters``), else None."""
        if not (self.repo_adapters and self.settings.repo_adapters):
            return None
        return await self.client.adapter_for(doc.path)

    def _from_cache(self, doc: Document, cursor: ctxmod.Cursor, line: int, character: int) -> Suggestion | None:
        exact = self.cache.get_exact(doc.uri, doc.version, line, character)
        if exact:
            self.stats.num_exact_hits += 1
            return Suggestion(exact, line, character, cursor.line_prefix, "cache")
        rest = self.cache.typed_through(doc.uri, doc.text[: cursor.offset], doc.text[cursor.offset :])
        if rest:
            self.stats.num_typed_through_hits += 1
            self.cache.put(doc.uri, doc.version, line, character, doc.text[: cursor.offset],
                           doc.text[cursor.offset :], rest)
            return Suggestion(rest, line, character, cursor.line_prefix, "typed_through")
        return None

    def _context_and_checks(self, doc: Document, line: int, character: int, index: SnippetIndex | None,
                            cursor: ctxmod.Cursor) -> tuple[ctxmod.CompletionContext, Any]:
        """The context, and the checks of the cursor's function for a block suggestion (None: unchecked)."""
        ctx = self.context(doc, line, character, index)
        checks = None
        if self.checker is not None and ctx.mode is ctxmod.Mode.MULTI_LINE:
            checks = self.checker.find(doc.path, doc.text, line, len(cursor.line_prefix))
        return ctx, checks

    async def _checked(self, doc: Document, ctx: ctxmod.CompletionContext, checks: Any, cursor: ctxmod.Cursor,
                       line: int, character: int, adapter: str | None = None) -> tuple[str, CheckNote | None]:
        """The best of k checked candidates, and what was checked; a result still running at the deadline
        is sent later through ``on_late_check``."""
        old = self._late.pop(doc.uri, None)
        if old is not None:
            old.cancel()  # a new checked request: the older pending result is about another cursor
        selection, note = await self._select(doc, ctx, checks, cursor, adapter)
        if selection is None or note is None:
            return "", None
        if selection.late is not None:
            self.stats.num_checked_late += 1
            self._late[doc.uri] = asyncio.ensure_future(
                self._late_result(doc, selection, note, cursor, line, character))
            if selection.generating:
                self._late_generation[doc.uri] = selection.stop_generating
        if self.on_check is not None:
            self.on_check(doc, Suggestion(selection.candidate.text, line, character, cursor.line_prefix, "engine",
                                          ctx.mode, check=note, adapter=adapter))
        return selection.candidate.text, note

    async def _select(self, doc: Document, ctx: ctxmod.CompletionContext, checks: Any, cursor: ctxmod.Cursor,
                      adapter: str | None = None) -> tuple[Selection | None, CheckNote | None]:
        """k checked candidates; the selection and its note (None: all empty). The greedy suggestion (what an
        unchecked request shows) is decoded alone first; the other k - 1 samples are asked for, in one n > 1
        request sharing the cached prompt, only when it fails its checks, and once more for any that repeated
        an earlier candidate when none passed (``selection.select``, staged;
        ``check.staged = false``: all k in one request, sample 0 greedy)."""
        assert self.checker is not None
        s, k = self.settings, self.checker.settings.candidates

        def gen(temperature: float, greedy_first: bool = False) -> Generation:
            return Generation(prompt=ctx.prompt, max_tokens=s.max_tokens_multiline, temperature=temperature,
                              adapter=adapter, greedy_first=greedy_first, heal=s.heals)

        if self.checker.settings.staged:
            first = self.client.samples(gen(0.0), 1)
            more = (lambda n: self.client.samples(gen(CHECK_TEMPERATURE), n)) if k > 1 else None
        else:  # all k at once: sample 0 is the greedy one
            first, more = self.client.samples(gen(CHECK_TEMPERATURE, greedy_first=True), k), None
        selection = await self.checker.select(first, ctx, checks, doc.path, doc.text, cursor.offset, s.max_lines,
                                              settle_on=0, more=more)
        if selection is None:
            return None, None
        self.stats.num_checked += 1
        self.stats.num_checked_passing += bool(selection.verdict and selection.verdict.passed)
        count = k if selection.generating else len(selection.candidates)
        return selection, CheckNote(checks.function, checks.def_line, selection.verdict, count,
                                    final=selection.late is None)

    def pending_check(self, uri: str) -> asyncio.Task[Any] | None:
        """The task that will report the final check result of ``uri``'s latest checked suggestion, if any."""
        task = self._late.get(uri)
        return task if task is not None and not task.done() else None

    async def _late_result(self, doc: Document, shown: Selection, note: CheckNote, cursor: ctxmod.Cursor,
                           line: int, character: int) -> Suggestion:
        assert shown.late is not None
        final = await shown.late
        changed = final.candidate.text != shown.candidate.text
        before, after = doc.text[: cursor.offset], doc.text[cursor.offset :]
        self.cache.put(doc.uri, doc.version, line, character, before, after, final.candidate.text)
        done = dataclasses.replace(note, verdict=final.verdict, final=True, changed=changed,
                                   num_candidates=len(final.candidates))
        suggestion = Suggestion(final.candidate.text, line, character, cursor.line_prefix, "engine",
                                ctxmod.Mode.MULTI_LINE, check=done)
        if self._late.get(doc.uri) is asyncio.current_task():
            del self._late[doc.uri]
        if self.on_check is not None:
            self.on_check(doc, suggestion)
        return suggestion

    async def complete(self, doc: Document, line: int, character: int,
                       index: SnippetIndex | None = None, checked: bool = False) -> Completion:
        """The engine path for one cursor (context -> engine -> post-processing), without the cache,
        debounce or superseding of ``suggest``: the text ``suggest`` shows. ``codeloop eval fim`` calls it, so
        the eval measures the editor's own completion. ``checked`` (with a checker): a block in a function
        with checks takes the checked path and waits for its final choice, as an editor that shows late
        results does."""
        await self.client.ready()
        adapter = await self.adapter_for(doc)
        start = time.perf_counter()
        if not (checked and self.checker is not None):
            ctx = await asyncio.to_thread(self.context, doc, line, character, index)
            raw, text = await self._generate(ctx, adapter)
            return Completion(ctx, raw, text)
        cursor = ctxmod.resolve(doc.text, line, character, doc.encoding)
        ctx, checks = await asyncio.to_thread(self._context_and_checks, doc, line, character, index, cursor)
        if checks is None:
            raw, text = await self._generate(ctx, adapter)
            return Completion(ctx, raw, text)
        selecting = time.perf_counter()
        selection, note = await self._select(doc, ctx, checks, cursor, adapter)
        if selection is None or note is None:
            return Completion(ctx, "", "")
        shown, shown_ms = selection.candidate.text, (time.perf_counter() - start) * 1000
        generation_ms = (selecting - start) * 1000 + selection.generation_ms
        if selection.late is None:
            return Completion(ctx, "", shown, note, shown, shown_ms, generation_ms)
        final = await selection.late
        note = dataclasses.replace(note, verdict=final.verdict, final=True, changed=final.candidate.text != shown,
                                   num_candidates=len(final.candidates))
        return Completion(ctx, "", final.candidate.text, note, shown, shown_ms, generation_ms)

    def context(self, doc: Document, line: int, character: int,
                index: SnippetIndex | None = None) -> ctxmod.CompletionContext:
        """The context within the settings' budgets, shrunk until the engine says the prompt fits."""
        budget, snippet_budget = self.settings.context_budget_chars, self.settings.snippet_budget_chars
        max_new = max(self.settings.max_tokens, self.settings.max_tokens_multiline)
        def retrieve(query: str, budget_chars: int) -> list[Snippet]:
            if index is None:
                return []
            memo = self._ranked.get(doc.uri)
            if memo is None or memo[0] != query:
                memo = self._ranked[doc.uri] = (query, index.rank(query, exclude=doc.path))
                while len(self._ranked) > MAX_RANKED_DOCS:
                    self._ranked.pop(next(iter(self._ranked)))
            return [dataclasses.replace(s, path=self._rel(s.path)) for s in pick(memo[1], budget_chars)]

        def build(chars: int, snippet_chars: int) -> ctxmod.CompletionContext:
            return ctxmod.build(self._rel(doc.path), doc.text, line, character, retrieve=retrieve,
                                budget_chars=chars, snippet_budget_chars=snippet_chars,
                                repo_name=_repo_name(self.root), encoding=doc.encoding, order=self.settings.fim_order)

        return prompt_fit.fit(build, self.client, budget, snippet_budget, max_new)

    def _rel(self, path: str) -> str:
        if self.root and path.startswith(self.root.rstrip("/") + "/"):
            return os.path.relpath(path, self.root)
        return os.path.basename(path) if os.path.isabs(path) else path

    async def _generate(self, ctx: ctxmod.CompletionContext, adapter: str | None = None) -> tuple[str, str]:
        """(raw engine text, the post-processed suggestion), under ``adapter`` (None: the base model)."""
        s = self.settings
        multi = ctx.mode is ctxmod.Mode.MULTI_LINE
        gen = Generation(
            prompt=ctx.prompt, max_tokens=s.max_tokens_multiline if multi else s.max_tokens,
            temperature=s.temperature, adapter=adapter, heal=s.heals,
        )
        raw = ""
        async with contextlib.aclosing(self.client.stream(gen)) as stream:  # type: ignore[type-var]
            async for chunk in stream:
                raw = chunk.text
                if postprocess.should_stop(raw, ctx, s.max_lines):
                    break
        return raw, postprocess.finish(raw, ctx, s.max_lines)


def _repo_name(root: str | None) -> str | None:
    if not root:
        return None
    return os.path.basename(root.rstrip("/")) or None

