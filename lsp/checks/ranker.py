"""Which candidate to show: all checks passing first, then most passing, then the model's own ranking.

Pure. The model's ranking is the cumulative log-probability of the tokens each candidate kept (higher
first); without log-probabilities (an HTTP engine), the engine's sample order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lsp.checks.verdict import Verdict


@dataclass(frozen=True)
class Candidate:
    index: int
    """Sample index in the engine request."""
    text: str
    """The post-processed suggestion (what the editor would insert)."""
    logprob: float | None = None
    """Cumulative log-probability of the kept tokens (None: unknown)."""


def model_order(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The model's own ranking, best first."""
    return sorted(candidates, key=lambda c: (-(c.logprob if c.logprob is not None else 0.0), c.index))


def distinct(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Non-empty candidates in model order, the first of each identical text only (checked once)."""
    seen: set[str] = set()
    out = []
    for c in model_order(candidates):
        if c.text and c.text not in seen:
            seen.add(c.text)
            out.append(c)
    return out


def rank(candidates: Sequence[Candidate], verdicts: Mapping[int, Verdict]) -> list[Candidate]:
    """Best first. A candidate without a verdict ranks as one whose checks all failed."""
    def key(c: Candidate) -> tuple[bool, int, float, int]:
        v = verdicts.get(c.index)
        logprob = c.logprob if c.logprob is not None else 0.0
        return (not (v is not None and v.passed), -(v.num_passed if v else 0), -logprob, c.index)

    return sorted(candidates, key=key)
