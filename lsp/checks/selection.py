"""k candidates (from one engine request, or staged: the greedy one, then the others), checked against a
deadline: the candidate to show now, and (when the deadline came first) the final choice later.

Each sample is cut by post-processing as soon as more tokens could not change it; its checks start at
once, while the other samples are still generating. A passing candidate that nothing can beat any more
(every candidate the model ranks higher failed, and the samples still generating already rank lower) is
shown at once and the engine request stopped; so is a passing ``settle_on`` candidate (the greedy
suggestion an unchecked request would show: when it passes, sampling more cannot improve what the user
gets, only delay it). Otherwise the deadline runs from the first finished (non-empty) candidate, whether
or not the other samples are still generating: what is known then is shown, and the rest of the
generation and the checks continue in the late result.

Staged (``more``): the first stream holds only the ``settle_on`` suggestion, decoded alone (not in a batch
of k, so it comes as fast as an unchecked one); the other samples are asked for only when it fails its
checks (their request finds the prompt in the engine's prefix cache). When the usual suggestion passes, the
only latency the check adds is its own run. When it fails and the other samples cannot be expected before
the deadline (they are asked for only now and decode about as long as it did), it is shown at once with its
failing verdict, and the samples follow in the late result: waiting would show the same thing later.

Invariants: a candidate is shown as checked only with a verdict from its own finished run; a cancelled
selection cancels its pending runs (those not started never start); the late result never blocks the
caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from lsp import postprocess
from lsp.checks.ranker import Candidate, model_order, rank
from lsp.checks.verdict import Verdict
from lsp.context import CompletionContext
from lsp.engine_client import Samples


@dataclass
class Selection:
    """What to show. ``verdict`` None: shown unmarked (no candidate's checks had finished in time)."""

    candidate: Candidate
    verdict: Verdict | None
    candidates: list[Candidate] = field(default_factory=list)
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    late: asyncio.Task[Selection] | None = None
    """Set when checks were still running at the deadline: resolves to the final selection."""
    generating: bool = False
    """Shown while samples were still generating: ``candidates`` are those cut so far."""
    stop_generating: Callable[[], None] = lambda: None
    """Ends that generation (the late result then chooses among the candidates cut so far)."""
    first_candidate_ms: float = 0.0
    """From the start of the request to the first finished candidate."""
    generation_ms: float = 0.0
    """From the start of the request to the end of generation (every sample cut, or stopped early), or to
    the moment shown when the deadline came while samples were still generating."""


CheckRun = Callable[[Candidate], Awaitable[Verdict]]
More = Callable[[int], AsyncIterator[Samples]]
"""The second stage of a staged selection: opens an engine request of ``n`` more samples."""


class _Round:
    """One selection in progress: the samples cut so far, what the others may still become, the runs.

    Invariant: ``bounds`` holds, for every sample not cut yet, its cumulative log-probability so far (an
    upper bound of its final value: log-probabilities only add negative terms), or None when unknown."""

    def __init__(self, check: CheckRun, settle_on: int | None = None, want: int = 1) -> None:
        self.check, self.settle_on, self.want = check, settle_on, want
        self.frozen: dict[int, Candidate] = {}
        self.bounds: dict[int, float | None] = {}
        self.runs: dict[int, asyncio.Task[Verdict]] = {}
        self.first_at: float | None = None
        self.read_done_at: float | None = None
        self.streamed_at: float | None = None  # the first stream's first batch (its prompt is read)
        self.usual_decode_s: float | None = None  # from then to the ``settle_on`` sample's cut
        self.more_at: float | None = None  # when the staged samples were asked for
        self.changed = asyncio.Event()
        self._seen: set[str] = set()

    async def read(self, stream: AsyncIterator[Samples], ctx: CompletionContext, max_lines: int,
                   more: More | None = None) -> None:
        """Cut each sample as soon as more tokens could not change it and start its run; stop the stream
        once every sample is cut. With ``more``: once ``stream``'s samples are cut, wait for the
        ``settle_on`` candidate's verdict and, only when it did not pass, read samples from ``more`` (numbered
        after the first stream's) until ``want`` distinct candidates were checked: one request for what is
        missing, and one more for what repeated samples left missing when none of them passed either."""
        await self._cut(stream, ctx, max_lines, 0)
        if more is not None and not await self._usual_passed():
            self.more_at = time.perf_counter()
            self.changed.set()
            await self._cut(more(max(1, self.want - len(self._seen))), ctx, max_lines, len(self.frozen))
            if self.want > len(self._seen) and not await self._any_passed():
                await self._cut(more(self.want - len(self._seen)), ctx, max_lines, len(self.frozen))
        self.read_done_at = time.perf_counter()
        self.changed.set()

    async def _cut(self, stream: AsyncIterator[Samples], ctx: CompletionContext, max_lines: int,
                   offset: int) -> None:
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for batch in stream:
                self.streamed_at = self.streamed_at or time.perf_counter()
                for s in batch.samples:
                    index = s.index + offset
                    if index in self.frozen:
                        continue
                    if s.finished or postprocess.should_stop(s.text, ctx, max_lines):
                        self._freeze(Candidate(index, postprocess.finish(s.text, ctx, max_lines), s.logprob))
                    else:
                        self.bounds[index] = s.logprob
                if batch.samples and all(s.index + offset in self.frozen for s in batch.samples):
                    break
        self.bounds.clear()

    async def _usual_passed(self) -> bool:
        """Whether the ``settle_on`` candidate's run (once finished) passed; False when it has none (empty)."""
        run = self.runs.get(self.settle_on) if self.settle_on is not None else None
        if run is None:
            return False
        await asyncio.wait({run})
        verdict = _done_verdicts(self.runs).get(self.settle_on)
        return verdict is not None and verdict.passed

    async def _any_passed(self) -> bool:
        """Whether any candidate passed, once every run started so far has finished."""
        if self.runs:
            await asyncio.wait(set(self.runs.values()))
        return self._pass_known()

    def _pass_known(self) -> bool:
        """Whether a finished run has passed."""
        return any(v.passed for v in _done_verdicts(self.runs).values())

    def _freeze(self, c: Candidate) -> None:
        self.frozen[c.index] = c
        if c.index == self.settle_on and self.streamed_at is not None:
            self.usual_decode_s = time.perf_counter() - self.streamed_at
        self.bounds.pop(c.index, None)
        if c.text and c.text not in self._seen:  # identical texts are checked once
            self.first_at = self.first_at or time.perf_counter()  # the deadline runs from the first to show
            self._seen.add(c.text)
            self.runs[c.index] = asyncio.ensure_future(self.check(c))
            self.runs[c.index].add_done_callback(lambda _: self.changed.set())
        self.changed.set()

    def showable(self) -> bool:
        """Whether the deadline may show something now: the ``settle_on`` sample (the suggestion an unchecked
        request shows) is cut, or a candidate is known to pass; a shorter, sampled candidate that happened to
        finish first is never shown in place of the usual suggestion before its checks pass."""
        if self.settle_on is None or self.settle_on in self.frozen:
            return True
        return self._pass_known()

    def due(self, deadline_s: float) -> float | None:
        """When to show what is known (None: not yet due): ``deadline_s`` after the first candidate, once
        ``showable``; at once when the staged samples, asked for only after the usual suggestion failed,
        cannot be expected before that (their decoding takes about as long as the usual one's did)."""
        if self.first_at is None or not self.showable():
            return None
        limit = self.first_at + deadline_s
        if self.more_at is not None and self.usual_decode_s is not None:
            return self.more_at if self.more_at + self.usual_decode_s > limit else limit
        return limit

    def checked(self) -> list[Candidate]:
        """The candidates being checked (non-empty, distinct), in sample order."""
        return [self.frozen[i] for i in sorted(self.runs)]

    def settled(self) -> bool:
        """True when a passing candidate is known that nothing still running or generating can beat:
        every candidate the model ranks higher has failed, and no sample still generating can end up
        ranked higher (its log-probability so far already ranks it lower)."""
        verdicts = _done_verdicts(self.runs)
        if self.settle_on in verdicts and verdicts[self.settle_on].passed:
            return True
        passing = [c for c in model_order(self.checked()) if c.index in verdicts and verdicts[c.index].passed]
        if not passing:
            return False
        best = _model_key(passing[0].logprob, passing[0].index)
        pending = [c for c in self.checked() if c.index not in verdicts]
        if any(_model_key(c.logprob, c.index) < best for c in pending):
            return False
        return not any(_model_key(bound, i) < best for i, bound in self.bounds.items())


def _model_key(logprob: float | None, index: int) -> tuple[float, int]:
    return (-(logprob if logprob is not None else 0.0), index)


async def select(stream: AsyncIterator[Samples], ctx: CompletionContext, check: CheckRun,
                 deadline_s: float, max_lines: int = 12, settle_on: int | None = None,
                 more: More | None = None, want: int = 1) -> Selection | None:
    """The candidate to show (None: every candidate was empty). Returns as soon as the best possible
    candidate, or the ``settle_on`` sample, is known to pass (the engine request is then stopped), when
    generation has ended and every check has finished, or ``deadline_s`` after the first candidate, even
    while other samples still generate: they and their checks go on in ``Selection.late``. ``more``: the
    other samples' requests, opened only once ``settle_on`` (from ``stream``) is known not to pass, until
    ``want`` distinct candidates were checked (at most two requests)."""
    start = time.perf_counter()
    rnd = _Round(check, settle_on, want)
    reader = asyncio.ensure_future(rnd.read(stream, ctx, max_lines, more))
    try:
        await _wait(rnd, reader, lambda: rnd.due(deadline_s))
    except BaseException:
        await _stop(reader, rnd.runs.values())
        raise
    settled = rnd.settled()
    if settled and not reader.done():  # stop generating (closing the stream aborts the request)
        await _stop(reader, ())
    shown = rnd.checked()
    if not shown:  # generation ended with nothing to show (the deadline needs a first candidate)
        return None
    selection = _choose(shown, rnd.runs, settle_on if settled else None, settle_on)
    selection.first_candidate_ms = ((rnd.first_at or start) - start) * 1000
    selection.generation_ms = ((rnd.read_done_at or time.perf_counter()) - start) * 1000
    if settled:  # nothing still running can change the choice: no late result
        for task in rnd.runs.values():
            task.cancel()
    elif not reader.done() or any(not t.done() for t in rnd.runs.values()):
        selection.generating = not reader.done()
        selection.stop_generating = reader.cancel
        selection.late = asyncio.ensure_future(_final(rnd, reader))
        selection.late.add_done_callback(lambda task: _abandon(task, rnd, reader))
    return selection


def _abandon(late: asyncio.Task[Selection], rnd: _Round, reader: asyncio.Task[None]) -> None:
    """A late result cancelled (even before it started) stops its generation and its checks."""
    if late.cancelled():
        reader.cancel()
        for task in rnd.runs.values():
            task.cancel()


async def _wait(rnd: _Round, reader: asyncio.Task[None], deadline: Callable[[], float | None]) -> None:
    """Until a candidate settles the round, generation has ended and every check has finished, or the
    ``deadline()`` (None: not running yet) has passed. An engine error ends the wait by raising."""
    while not rnd.settled():
        if reader.done():
            if not reader.cancelled():  # cancelled: generation was stopped, what was cut stays
                reader.result()
            if all(t.done() for t in rnd.runs.values()):
                return
        limit, now = deadline(), time.perf_counter()
        if limit is not None and now >= limit:
            return
        rnd.changed.clear()
        waiter = asyncio.ensure_future(rnd.changed.wait())
        await asyncio.wait({waiter}, timeout=None if limit is None else limit - now)
        waiter.cancel()


async def _stop(reader: asyncio.Task[None], runs: Iterable[asyncio.Task[Verdict]]) -> None:
    for task in runs:
        task.cancel()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)


def _done_verdicts(runs: dict[int, asyncio.Task[Verdict]]) -> dict[int, Verdict]:
    return {i: t.result() for i, t in runs.items() if t.done() and not t.cancelled() and t.exception() is None}


def _choose(candidates: list[Candidate], runs: dict[int, asyncio.Task[Verdict]],
            settled_on: int | None = None, usual: int | None = None) -> Selection:
    """Shown unmarked when nothing is known to pass and checks are still running: the ``usual`` sample (what
    an unchecked request shows) when it is among ``candidates``, else the model's first."""
    verdicts = _done_verdicts(runs)
    chosen = [c for c in candidates if c.index == settled_on and c.index in verdicts and verdicts[c.index].passed]
    if chosen:
        return Selection(chosen[0], verdicts[chosen[0].index], candidates, verdicts)
    if len(verdicts) == len(candidates):
        best = rank(candidates, verdicts)[0]
        return Selection(best, verdicts[best.index], candidates, verdicts)
    passing = [c for c in rank(candidates, verdicts) if c.index in verdicts and verdicts[c.index].passed]
    if passing:  # a candidate already known to pass beats waiting
        return Selection(passing[0], verdicts[passing[0].index], candidates, verdicts)
    fallback = [c for c in candidates if c.index == usual] or model_order(candidates)
    return Selection(fallback[0], None, candidates, verdicts)


async def _final(rnd: _Round, reader: asyncio.Task[None]) -> Selection:
    """The choice once generation has ended (or a candidate settled the round) and every check has
    finished; cancelling it stops the generation and the checks still running. An engine error after the
    deadline ends generation: the choice is among the candidates cut before it."""
    try:
        with contextlib.suppress(Exception):
            await _wait(rnd, reader, lambda: None)
        settled = rnd.settled()
        if not reader.done():
            await _stop(reader, ())
        if settled:
            for task in rnd.runs.values():
                task.cancel()
        else:
            await asyncio.gather(*rnd.runs.values(), return_exceptions=True)
    except asyncio.CancelledError:
        await _stop(reader, rnd.runs.values())
        raise
    return _choose(rnd.checked(), rnd.runs, rnd.settle_on if settled else None, rnd.settle_on)
