"""Speculative decoding: drafts of the next tokens, verified by the target model in one batched forward.

Before each step the :class:`Speculator` asks a proposer (prompt lookup, or a draft model) for drafts of
each decoding sequence; the scheduler runs the newest token plus the drafts as one chunk over the paged
KV; the runner samples at every row exactly as plain decoding would (same seeded generator per output
position) and accepts drafts while they equal what it sampled; the scheduler rolls the KV of rejected
drafts back. The output is therefore the one plain decoding gives, token for token (given row-independent
kernels for generated rows: see ``inference/models/hybrid_linear.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from inference.config import SpeculativeConfig
from inference.sequence import Sequence


class Proposer(Protocol):
    def propose(self, seqs: list[Sequence], limits: list[int]) -> list[list[int]]:
        """At most ``limits[i]`` draft tokens for ``seqs[i]``."""
        ...


@dataclass
class SpeculationStats:
    num_steps: int = 0
    """Steps in which at least one sequence had drafts."""
    num_proposed: int = 0


class Speculator:
    """Fills ``draft_token_ids`` of decoding sequences before the scheduler plans a step.

    Drafts never make a sequence run past ``max_tokens`` or ``max_model_len``, nor a step's generated rows
    past ``max_rows`` (shared out in scheduling order). Speculation pauses while more than ``max_batch``
    sequences decode: verification rows multiply with the batch, and at large batches plain decoding
    already uses the weights it reads well.
    """

    def __init__(self, config: SpeculativeConfig, proposer: Proposer, max_model_len: int,
                 max_rows: int | None = None) -> None:
        self.config = config
        self.proposer = proposer
        self.max_model_len = max_model_len
        self.max_rows = max_rows
        """Most generated rows per step (decode tokens + drafts): with hybrid weights, the rows the packed
        kernels take (beyond, the step would run dense and differ from plain decoding)."""
        self.stats = SpeculationStats()

    def propose(self, running: list[Sequence]) -> None:
        seqs = sorted((s for s in running if s.is_decoding), key=Sequence.rank)
        if not seqs or len(seqs) > self.config.max_batch:
            return
        spare = self.config.num_tokens * len(seqs) if self.max_rows is None else self.max_rows - len(seqs)
        share, extra = divmod(max(spare, 0), len(seqs))
        limits = [min(self.config.num_tokens, share + (i < extra), s.params.max_tokens - s.num_generated - 1,
                      self.max_model_len - s.num_tokens) for i, s in enumerate(seqs)]
        proposed = self.proposer.propose(seqs, limits)
        for seq, drafts, limit in zip(seqs, proposed, limits, strict=True):
            seq.draft_token_ids = list(drafts[:max(limit, 0)])
        num = sum(len(s.draft_token_ids) for s in seqs)
        self.stats.num_steps += num > 0
        self.stats.num_proposed += num


def make_speculator(config: SpeculativeConfig, runner: Any, max_model_len: int,
                    num_blocks: int | None = None) -> Speculator | None:
    """The speculator ``config`` asks for (None for method "none"); a draft model gets ``num_blocks`` KV
    blocks (the target's count: it never holds more tokens than the target)."""
    if config.method == "none":
        return None
    kernels = getattr(runner, "kernels", None)
    max_rows = kernels.packed_max_rows if kernels is not None and kernels.decode != "dense" else None
    if config.method == "ngram":
        from inference.speculative.ngram import NgramProposer

        proposer: Proposer = NgramProposer(config.ngram_min, config.ngram_max)
    else:
        from inference.speculative.draft_model import DraftModelProposer

        proposer = DraftModelProposer(config, runner, num_blocks)
    return Speculator(config, proposer, max_model_len, max_rows)
