"""``Completer.complete(checked=True)`` (what ``codeloop eval fim`` calls): the final checked choice, the
text shown at the deadline, and the unchecked path untouched when there is nothing to check."""

from __future__ import annotations

import asyncio

import pytest

from lsp.checks.checker import Checker
from lsp.completer import Completer
from lsp.config import CheckSettings, Settings
from lsp.engine_client import ClientStats, Sample, Samples
from lsp.suggestion import Document
from sandbox.bwrap import available

pytestmark = [pytest.mark.bwrap, pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")]
DOC = 'def double(n):\n    """\n    >>> double(4)\n    8\n    """\n    @\n'.replace("@", "")


class ScriptedClient:
    """An engine client whose sample requests answer ``choices`` in turn, one request after the other (and
    whose single streamed requests answer ``choices[0]``)."""

    def __init__(self, choices: list[str]) -> None:
        self.choices = choices
        self.stats = ClientStats()
        self.requests: list[tuple[float, int]] = []
        self.served = 0

    async def ready(self) -> None:
        return None

    def max_prompt_tokens(self, max_tokens: int) -> None:
        return None

    def count_tokens(self, text: str) -> None:
        return None

    async def samples(self, gen, n: int):
        self.requests.append((gen.temperature, n, gen.greedy_first))
        first, self.served = self.served, self.served + n
        yield Samples([Sample(i, self.choices[(first + i) % len(self.choices)], -float(i), True)
                       for i in range(n)], True)

    async def stream(self, gen):
        from lsp.engine_client import Chunk

        self.requests.append((gen.temperature, 1, gen.greedy_first))
        yield Chunk(self.choices[0], self.choices[0], True)


def complete(workspace, choices, deadline_ms: int, checked: bool = True, staged: bool = True):
    client = ScriptedClient(choices)
    settings = Settings().merged({"debounceMs": 0})
    checker = Checker(str(workspace), CheckSettings(enabled=True, candidates=2, deadline_ms=deadline_ms,
                                                   staged=staged))
    completer = Completer(client, settings, str(workspace), checker)
    doc = Document((workspace / "m.py").as_uri(), str(workspace / "m.py"), DOC)
    try:
        return asyncio.run(completer.complete(doc, 5, 4, checked=checked)), client.requests
    finally:
        checker.close()


def test_checked_complete_waits_for_the_final_choice(workspace):
    done, requests = complete(workspace, ["return n + 3\n\n\n", "return 2 * n\n\n\n"], deadline_ms=0)
    # the greedy suggestion alone first; it fails, so the other k - 1 candidates are sampled
    assert requests == [(0.0, 1, False), (0.7, 1, False)]
    assert done.shown == "return n + 3" and done.text == "return 2 * n"
    assert done.check.final and done.check.changed and done.check.summary() == "passes 1/1 doctests"


def test_one_request_mode_asks_for_all_candidates_at_once(workspace):
    done, requests = complete(workspace, ["return n + 3\n\n\n", "return 2 * n\n\n\n"], deadline_ms=0, staged=False)
    assert requests == [(0.7, 2, True)]  # candidate 0 is the greedy suggestion, the rest sample
    assert done.shown == "return n + 3" and done.text == "return 2 * n" and done.check.verdict.passed


def test_a_passing_greedy_suggestion_asks_for_no_samples(workspace):
    done, requests = complete(workspace, ["return 2 * n\n\n\n", "return n + 3\n\n\n"], deadline_ms=5000)
    assert requests == [(0.0, 1, False)]
    assert done.shown == done.text == "return 2 * n" and done.check.summary() == "passes 1/1 doctests"
    assert done.check.final and not done.check.changed


def test_unchecked_complete_is_the_greedy_request(workspace):
    done, requests = complete(workspace, ["return n + 3\n\n\n"], deadline_ms=0, checked=False)
    assert requests == [(0.0, 1, False)] and done.text == "return n + 3" and done.check is None
