"""In-process prompt fitting (defect 3): the prompt always fits the engine's context, measured on the tokens
actually used, whatever the budgets and however long a line is."""

from __future__ import annotations

import random

import pytest

from lsp.completer import Completer
from lsp.config import Settings
from lsp.suggestion import Document


class TokenCountingClient:
    """The two things fitting asks of an engine client: a tokenizer (~3.5 chars a token here) and a limit."""

    def __init__(self, limit: int) -> None:
        self.limit, self.counted = limit, 0

    def count_tokens(self, text: str) -> int:
        self.counted += 1
        return -(-len(text) * 2 // 7)

    def max_prompt_tokens(self, max_tokens: int) -> int:
        return self.limit


def _fitted(text: str, line: int, character: int, limit: int, **settings) -> tuple[int, TokenCountingClient]:
    client = TokenCountingClient(limit)
    completer = Completer(client, Settings().merged(settings))
    ctx = completer.context(Document("file:///w/a.py", "/w/a.py", text), line, character)
    return client.count_tokens(ctx.prompt), client


def test_a_long_line_on_a_small_context_fits():
    """The reproduction: one 540-character line, a model with a small context. Four rounds of shrinking the
    configured budget (3000 characters, unused by this short document) left the prompt too long."""
    text = "x = [" + ", ".join(str(i) for i in range(400)) + "]\n"
    assert len(text) > 540
    tokens, _ = _fitted(text, 0, len(text) - 2, limit=60)
    assert tokens <= 60


@pytest.mark.parametrize("seed", range(20))
def test_random_documents_and_budgets_always_fit(seed: int):
    rng = random.Random(seed)
    lines = ["".join(rng.choice("abc xyz()=+,\t") for _ in range(rng.randint(0, 400))) for _ in range(rng.randint(1, 40))]
    text = "\n".join(lines) + "\n"
    line = rng.randrange(len(lines))
    limit = rng.randint(24, 400)
    tokens, client = _fitted(text, line, rng.randint(0, len(lines[line])), limit,
                             contextBudgetChars=rng.randint(100, 20000), snippetBudgetChars=rng.randint(0, 5000))
    assert tokens <= limit
    assert client.counted <= 40  # a bounded number of tokenizer calls per keystroke


def test_no_prompt_fits_means_no_suggestion_not_an_error():
    import asyncio

    class Tiny(TokenCountingClient):
        async def ready(self) -> None:
            return None

    completer = Completer(Tiny(limit=3), Settings().merged({"debounceMs": 0}))
    doc = Document("file:///w/a.py", "/w/a.py", "def f():\n    return 1\n")
    assert asyncio.run(completer.suggest(doc, 1, 4)) is None
    assert completer.stats.num_errors == 0
