"""One sequence of tokens being generated (one of a request's n samples)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from inference.request import FinishReason, Priority
from inference.sampling import SamplingParams


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    """Token ids and KV bookkeeping of one sample.

    Invariants: ``num_computed_tokens <= num_tokens``; ``block_table`` covers at least the computed
    positions; it grows while the sequence runs, shrinks only when rejected speculative drafts are rolled
    back (never below the computed positions) and is emptied when preempted or finished;
    ``block_hashes[i]`` is the chained hash of full computed block i (never of a rejected draft).
    ``draft_token_ids`` are proposals for the tokens after ``token_ids``, not part of the sequence until the
    model accepts them.
    """

    seq_id: int
    request_id: str
    token_ids: list[int]
    params: SamplingParams
    priority: Priority = Priority.INTERACTIVE
    arrival: int = 0
    """Monotonic admission order; FIFO within a priority, newest preempted first."""
    sample_index: int = 0
    extra_key: str | None = None
    """Adapter id and version: part of every block hash."""
    adapter_id: str | None = None
    """Key of the adapter this sequence runs under (copied to each of its ``SeqChunk``s); None: the base model."""
    num_forks_pending: int = 0
    """Siblings still to fork from this sequence once all but the last prompt token are computed."""
    status: SequenceStatus = SequenceStatus.WAITING
    num_computed_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    block_hashes: list[bytes] = field(default_factory=list)
    num_cached_tokens: int | None = None
    """Prompt tokens served by the prefix cache at first admission (None: not admitted yet)."""
    logprobs: list[float] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    num_preemptions: int = 0
    draft_token_ids: list[int] = field(default_factory=list)
    """Speculative proposals for the next tokens (set before scheduling, cleared by the step's update)."""
    num_draft_tokens: int = 0
    """Drafts verified so far (for acceptance statistics)."""
    num_accepted_tokens: int = 0
    """Drafts the model accepted so far."""

    def __post_init__(self) -> None:
        self.num_prompt_tokens = len(self.token_ids)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_generated(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def target_computed(self) -> int:
        """How many positions must be in the KV cache before this sequence stops needing compute."""
        if self.num_forks_pending:
            return self.num_prompt_tokens - 1
        return self.num_tokens

    @property
    def num_uncomputed(self) -> int:
        return self.target_computed - self.num_computed_tokens

    def truncate(self, num_tokens: int) -> None:
        """Drop tokens after the first ``num_tokens`` (the sequence stops there; it must not run on)."""
        del self.token_ids[num_tokens:]
        del self.logprobs[max(num_tokens - self.num_prompt_tokens, 0):]
        self.num_computed_tokens = min(self.num_computed_tokens, num_tokens)

    @property
    def is_decoding(self) -> bool:
        """Past its prompt, with only the newest token left to compute: the shape speculation extends."""
        return (self.num_uncomputed == 1 and self.num_computed_tokens >= self.num_prompt_tokens
                and not self.num_forks_pending)

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED

    def rank(self) -> tuple[int, int, int]:
        """Scheduling order: smaller runs first; the largest is preempted first."""
        return (int(self.priority), self.arrival, self.sample_index)
