"""Requests asked to stop while a step runs, so a long prompt step can end between two layers.

A step of a hundred-odd prompt rows of the 1.5B takes most of a second on 2 cores. An editor request
cancelled by the next keystroke used to hold the engine until its step ended, and the next keystroke's
request waited behind it (the 1.5B's keystroke replay: a median 0.4 s, up to 1.3 s). ``AsyncEngine.abort``
marks the request here at once, from the caller's thread; the model calls the step's check between layers,
and once every request of the running step is marked the step raises ``StepInterrupted``. Nothing the step
computed is kept: its KV went to blocks past the sequences' computed positions, which are hashed for the
prefix cache only after a step completes, and the abort that follows frees them.

Only a step that computes a small part of its prompts may stop (``may_stop``). While the user types, the
prompt's head is cached and a step computes the changed tail, which the next keystroke changes again:
stopping loses nothing. A step computing most of a prompt (a moved context window, other snippets, a new
file) does work the next keystroke's prompt shares; stopping it threw that away on every keystroke, and in the
replay a 617-token prompt was never cached again (each pause's request was cancelled mid-step).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

STOPPABLE_SHARE = 0.5
"""A step may stop early only if it computes at most this share of each of its prompts."""


def may_stop(chunks: Iterable) -> bool:
    """Whether a step of these chunks (``SeqChunk``) may stop early: each computes at most STOPPABLE_SHARE of
    its prompt (generated rows count as nothing; an unknown prompt length does not hold a step)."""
    return all(c.num_prompt_tokens is None or c.num_prompt_rows <= STOPPABLE_SHARE * c.num_prompt_tokens
               for c in chunks)


class StepInterrupted(Exception):
    """The running step stopped between two layers: every request in it was asked to stop."""


class StopRequests:
    """Thread-safe set of request ids whose abort is on its way to the engine's thread."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def add(self, request_id: str) -> None:
        with self._lock:
            self._ids.add(request_id)

    def discard(self, request_id: str) -> None:
        with self._lock:
            self._ids.discard(request_id)

    def check(self, request_ids: Iterable[str]) -> Callable[[], None]:
        """A check for the model to call between layers: raises ``StepInterrupted`` once every one of
        ``request_ids`` (the step's requests; none: never) is asked to stop."""
        wanted = frozenset(request_ids)

        def check() -> None:
            with self._lock:
                stop = bool(wanted) and wanted <= self._ids
            if stop:
                raise StepInterrupted

        return check
