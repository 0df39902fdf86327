"""k candidates from one engine request, checked against a deadline: the candidate to show now, and
(when the deadline came first) the final choice later.

Each sample is cut by post-processing as soon as more tokens could not change it; its checks start at
once, while the other samples are still generating. The deadline runs from the first finished candidate.

Invariants: a candidate is shown as checked only with a verdict from its own finished run; a cancelled
selection cancels its pending runs (those not started never start); the late result never blocks the
caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from lsp import postprocess
from lsp.checks.ranker import Candidate, model_order, rank
from lsp.checks.verdict import Verdict
from lsp.client import Samples
from lsp.context import CompletionContext


@dataclass
class Selection:
    """What to show. ``verdict`` None: shown unmarked (no candidate's checks had finished in time)."""

    candidate: Candidate
    verdict: Verdict | None
    candidates: list[Candidate] = field(default_factory=list)
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    late: asyncio.Task[Selection] | None = None
    """Set when checks were still running at the deadline: resolves to the final selection."""
    first_candidate_ms: float = 0.0
    """From the start of the request to the first finished candidate."""


CheckRun = Callable[[Candidate], Awaitable[Verdict]]


async def collect(stream: AsyncIterator[Samples], ctx: CompletionContext, max_lines: int,
                  on_candidate: Callable[[Candidate], None]) -> list[Candidate]:
    """Read the stream until every sample is cut or finished (then stop it); ``on_candidate`` is called
    once per sample, in the order they finish."""
    frozen: dict[int, Candidate] = {}
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        async for batch in stream:
            samples = batch.samples
            for s in samples:
                if s.index not in frozen and (s.finished or postprocess.should_stop(s.text, ctx, max_lines)):
                    frozen[s.index] = Candidate(s.index, postprocess.finish(s.text, ctx, max_lines), s.logprob)
                    on_candidate(frozen[s.index])
            if samples and all(s.index in frozen for s in samples):
                break
    return [frozen[i] for i in sorted(frozen)]


async def select(stream: AsyncIterator[Samples], ctx: CompletionContext, check: CheckRun,
                 deadline_s: float, max_lines: int = 12) -> Selection | None:
    """The candidate to show (None: every candidate was empty)."""
    start = time.perf_counter()
    runs: dict[int, asyncio.Task[Verdict]] = {}
    seen: set[str] = set()
    first_at: list[float] = []

    def on_candidate(c: Candidate) -> None:
        if not first_at:
            first_at.append(time.perf_counter())
        if c.text and c.text not in seen:  # identical texts are checked once
            seen.add(c.text)
            runs[c.index] = asyncio.ensure_future(check(c))

    try:
        candidates = await collect(stream, ctx, max_lines, on_candidate)
        shown = [c for c in candidates if c.index in runs]
        if not shown:
            return None
        deadline = first_at[0] + deadline_s
        await asyncio.wait(list(runs.values()), timeout=max(0.0, deadline - time.perf_counter()))
    except BaseException:
        for task in runs.values():
            task.cancel()
        raise
    selection = _choose(shown, runs)
    selection.first_candidate_ms = (first_at[0] - start) * 1000
    if any(not t.done() for t in runs.values()):
        selection.late = asyncio.ensure_future(_final(shown, runs))
    return selection


def _done_verdicts(runs: dict[int, asyncio.Task[Verdict]]) -> dict[int, Verdict]:
    return {i: t.result() for i, t in runs.items() if t.done() and not t.cancelled() and t.exception() is None}


def _choose(candidates: list[Candidate], runs: dict[int, asyncio.Task[Verdict]]) -> Selection:
    verdicts = _done_verdicts(runs)
    if len(verdicts) == len(candidates):
        best = rank(candidates, verdicts)[0]
        return Selection(best, verdicts[best.index], candidates, verdicts)
    passing = [c for c in rank(candidates, verdicts) if c.index in verdicts and verdicts[c.index].passed]
    if passing:  # a candidate already known to pass beats waiting
        return Selection(passing[0], verdicts[passing[0].index], candidates, verdicts)
    return Selection(model_order(candidates)[0], None, candidates, verdicts)


async def _final(candidates: list[Candidate], runs: dict[int, asyncio.Task[Verdict]]) -> Selection:
    try:
        await asyncio.wait(list(runs.values()))
    except asyncio.CancelledError:
        for task in runs.values():
            task.cancel()
        raise
    return _choose(candidates, runs)
