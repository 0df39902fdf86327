"""Speculative decoding: drafts of the next tokens, verified by the target model in one batched forward.

Before each step the :class:`Speculator` asks a proposer (prompt lookup, or a draft model) for drafts of
each decoding sequence; the scheduler runs the newest token plus the drafts as one chunk over the paged
KV; the runner samples at every row exactly as plain decoding would (same seeded generator per output
position) and accepts drafts while they equal what it sampled; the scheduler rolls the KV of rejected
drafts back. The output is therefore the one plain decoding gives, token for token (given row-independent
kernels for generated rows: see ``inference/models/hybrid_linear.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from inference.config import SpeculativeConfig
from inference.sequence import Sequence


class Proposer(Protocol):
    step_seconds: float
    """Running estimate of the wall time of one draft position for a batch (0 for prompt lookup)."""

    def propose(self, seqs: list[Sequence], limits: list[int]) -> list[list[int]]:
        """At most ``limits[i]`` draft tokens for ``seqs[i]``."""
        ...


@dataclass
class SpeculationStats:
    num_steps: int = 0
    """Steps in which at least one sequence had drafts."""
    num_proposed: int = 0


DEFAULT_ROW_COST = 0.25
"""Without a measured cost table: each extra verification row costs this fraction of a one-row step."""
PRIOR = (1.2, 0.8)
"""Pseudo-counts (accepted, rejected) of the acceptance estimate before any draft is verified (p = 0.6)."""
DECAY = 0.98
"""Weight of past verifications in the acceptance estimate, per verification (recent text matters most)."""
EMA = 0.8
"""Weight of the previous value in running time estimates."""


class Speculator:
    """Fills ``draft_token_ids`` of decoding sequences before the scheduler plans a step.

    How many drafts: the ``k`` (at most ``config.num_tokens``) that maximises expected tokens per unit of
    time, ``(1 + p + ... + p^k) / (cost(rows with k drafts) + k * draft step / decode step)``, with ``p`` the
    running estimate of the chance that a draft is accepted given the one before it was, ``cost`` the
    measured time of that many generated rows relative to plain decoding (``row_cost``, from the autotune;
    a default slope without it) and the draft step the proposer's own time per draft position (a draft
    model's forward; nothing for prompt lookup) over the running time of a decode step. Drafts never make a sequence run past ``max_tokens`` or ``max_model_len``, nor a step's generated
    rows past ``max_rows`` (shared out in scheduling order). Speculation pauses while more than
    ``max_batch`` sequences decode: at large batches plain decoding already uses the weights it reads well.
    """

    def __init__(self, config: SpeculativeConfig, proposer: Proposer, max_model_len: int,
                 max_rows: int | None = None, row_cost: Callable[[int], float | None] | None = None) -> None:
        self.config = config
        self.proposer = proposer
        self.max_model_len = max_model_len
        self.max_rows = max_rows
        """Most generated rows per step (decode tokens + drafts): with hybrid weights, the rows the packed
        kernels take (beyond, the step would run dense and differ from plain decoding)."""
        self.row_cost = row_cost
        self._accepted, self._rejected = PRIOR
        self._decode_seconds: float | None = None
        self.stats = SpeculationStats()

    @property
    def acceptance(self) -> float:
        """Estimated chance that a draft is accepted when the drafts before it were."""
        return self._accepted / (self._accepted + self._rejected)

    def observe(self, num_drafts: int, num_accepted: int) -> None:
        """Record one verification: ``num_accepted`` of ``num_drafts`` drafts kept (a prefix)."""
        if num_drafts:
            self._accepted = DECAY * self._accepted + num_accepted
            self._rejected = DECAY * self._rejected + (num_accepted < num_drafts)

    def _relax(self) -> None:
        """A step without drafts: the estimate drifts back toward the prior (by ``DECAY``), so a bad run of
        rejections turns speculation off for a while, not for the rest of the engine's life (no drafts, no
        new evidence)."""
        a0, r0 = PRIOR
        self._accepted = a0 + DECAY * (self._accepted - a0)
        self._rejected = r0 + DECAY * (self._rejected - r0)

    def observe_step(self, seconds: float, generated_rows: int) -> None:
        """Record a step that ran only generated rows: the running time of a one-row decode step."""
        one_row = seconds / self._cost(generated_rows)
        prev = self._decode_seconds
        self._decode_seconds = one_row if prev is None else EMA * prev + (1 - EMA) * one_row

    def draft_length(self, num_seqs: int) -> int:
        """The number of drafts per sequence worth verifying now (0: plain decoding is faster)."""
        if not self.config.adaptive:
            return self.config.num_tokens
        p, best_k, best_rate = self.acceptance, 0, 1.0
        base = self._cost(num_seqs)
        draft = getattr(self.proposer, "step_seconds", 0.0)
        per_draft = draft / self._decode_seconds if draft and self._decode_seconds else 0.0
        for k in range(1, self.config.num_tokens + 1):
            tokens = sum(p ** i for i in range(k + 1))
            rate = tokens * base / (self._cost(num_seqs * (1 + k)) + k * per_draft * base)
            if rate > best_rate:
                best_k, best_rate = k, rate
        return best_k

    def _cost(self, rows: int) -> float:
        measured = self.row_cost(rows) if self.row_cost is not None else None
        return measured if measured is not None else 1.0 + DEFAULT_ROW_COST * (rows - 1)

    def propose(self, running: list[Sequence]) -> None:
        seqs = sorted((s for s in running if s.is_decoding), key=Sequence.rank)
        if not seqs or len(seqs) > self.config.max_batch:
            return
        k = self.draft_length(len(seqs))
        if k == 0:
            self._relax()
            return
        spare = k * len(seqs) if self.max_rows is None else min(k * len(seqs), self.max_rows - len(seqs))
        share, extra = divmod(max(spare, 0), len(seqs))
        limits = [min(k, share + (i < extra), s.params.max_tokens - s.num_generated - 1,
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
    hybrid = kernels is not None and kernels.decode != "dense"
    max_rows = kernels.packed_max_rows if hybrid else None
    if config.method == "ngram":
        from inference.speculative.ngram import NgramProposer

        proposer: Proposer = NgramProposer(config.ngram_min, config.ngram_max)
    else:
        from inference.speculative.draft_model import DraftModelProposer

        proposer = DraftModelProposer(config, runner, num_blocks)
    return Speculator(config, proposer, max_model_len, max_rows, kernels.row_cost if hybrid else None)
