"""Fitting a completion context into the engine's prompt window, counted in the engine's own tokens.

Invariant: ``fit`` returns a context whose prompt the engine accepts, or raises ``ContextTooSmall`` when not
even an empty one fits; it asks the tokenizer a bounded number of times (each count may be a round trip).
"""

from __future__ import annotations

from collections.abc import Callable

from lsp import context as ctxmod
from lsp.engine_client import EngineClient, token_bound

FIT_ROUNDS = 4
"""Proportional shrinking rounds before the binary search that guarantees a prompt that fits."""

Build = Callable[[int, int], ctxmod.CompletionContext]
"""(budget_chars, snippet_budget_chars) -> the context built within them."""


def fit(build: Build, client: EngineClient, budget_chars: int, snippet_budget_chars: int,
        max_new_tokens: int) -> ctxmod.CompletionContext:
    """The context within the budgets, shrunk until ``client`` says its prompt fits beside ``max_new_tokens``."""
    limit = client.max_prompt_tokens(max_new_tokens)
    ctx = build(budget_chars, snippet_budget_chars)
    if limit is None or token_bound(ctx.prompt) <= limit:
        return ctx  # NOTE: surely fits, nothing to count (over HTTP each count may be a round trip)
    for _ in range(FIT_ROUNDS):
        tokens = client.count_tokens(ctx.prompt)
        if tokens is None or tokens <= limit:
            return ctx
        # NOTE: shrink what the prompt holds, not the budgets (a short document uses far less than
        # its budget, and scaling an unused budget changed nothing for several rounds)
        scale = 0.9 * limit / tokens
        used = len(ctx.prefix) + len(ctx.suffix)
        ctx = build(int(min(budget_chars, used) * scale), int(sum(len(s.text) for s in ctx.snippets) * scale))
    return _largest_fitting(build, client, len(ctx.prefix) + len(ctx.suffix), limit)


def _largest_fitting(build: Build, client: EngineClient, chars: int, limit: int) -> ctxmod.CompletionContext:
    """The context without snippets with the most characters (binary search) whose prompt fits:
    the guarantee behind the rounds of ``fit``. Raises ContextTooSmall when not even an empty one fits."""
    best = build(0, 0)
    if (client.count_tokens(best.prompt) or 0) > limit:
        raise ctxmod.ContextTooSmall(f"the engine's context leaves {limit} prompt tokens: too few for any prompt")
    lo, hi = 0, chars
    while lo < hi:
        mid = (lo + hi + 1) // 2
        candidate = build(mid, 0)
        if (client.count_tokens(candidate.prompt) or 0) <= limit:
            lo, best = mid, candidate
        else:
            hi = mid - 1
    return best
