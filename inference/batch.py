"""The contract between the scheduler (torch-free) and the model runner (torch).

The scheduler decides *which* tokens run this step and where their KV lives; the runner computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from inference.sampling import SamplingParams


@dataclass(frozen=True)
class SeqChunk:
    """Tokens of one sequence computed in this step.

    Invariant: ``block_table`` covers positions ``[0, num_computed_tokens + len(token_ids))``; K/V of the
    first ``num_computed_tokens`` positions are already in the cache; the runner writes the new ones.
    """

    seq_id: int
    token_ids: list[int]
    """New tokens to run (a prefill chunk, or one token when decoding)."""
    num_computed_tokens: int
    """Positions already in the KV cache; the first new token sits at this position."""
    block_table: list[int]
    """Physical KV block ids, in position order."""
    sample: bool
    """True when the last new token is the sequence's last known token: the runner samples the next one."""
    params: SamplingParams | None = None
    """Needed when ``sample`` is True."""
    num_generated: int = 0
    """Tokens this sequence has sampled so far (seeds the per-step RNG so samples are batch-independent)."""
    sample_index: int = 0
    """Which of the request's n samples this sequence is (also seeds the RNG)."""
    adapter_id: str | None = None
    """Key of an adapter loaded in the runner (``ModelRunner.add_adapter``): its LoRA deltas are added, unmerged,
    to this chunk's rows of the projections (``inference/lora_layers.py``); None: the base model alone."""
    allowed_token_ids: Sequence[int] | None = None
    """Only these tokens may be sampled at this chunk's (single) sampling row: token healing (no drafts then)."""
    history: Sequence[int] | None = None
    """All token ids of the sequence so far (prompt, then generated), set only when ``sample`` is True and
    ``params`` has a penalty; read by the sampler before the scheduler appends the next token (drafts are
    not part of it)."""
    num_draft_tokens: int = 0
    """The last ``num_draft_tokens`` of ``token_ids`` are speculative drafts: the runner samples at each of the
    last ``num_draft_tokens + 1`` rows and accepts drafts while each equals the token sampled before it."""
    num_prompt_tokens: int | None = None
    """The sequence's prompt length. Positions below it are prompt rows (prefill weights and attention), the
    rest generated rows (decode weights, decode attention), so a generated token is computed the same way
    whatever the batch around it; ``history`` switches from prompt to generated tokens there.
    None: a one-token chunk after cached positions is a generated row, every other row a prompt row."""

    @property
    def num_prompt_rows(self) -> int:
        """How many leading rows of this chunk are prompt rows (the rest are generated rows)."""
        n = len(self.token_ids)
        if self.num_prompt_tokens is None:
            return 0 if n == 1 and self.num_computed_tokens > 0 else n
        return min(max(self.num_prompt_tokens - self.num_computed_tokens, 0), n)


@dataclass(frozen=True)
class BlockCopy:
    """Copy-on-write: copy the KV of block ``src`` into block ``dst`` before running the step."""

    src: int
    dst: int


@dataclass
class StepBatch:
    """One engine step's work, in the order the runner should lay tokens out."""

    chunks: list[SeqChunk] = field(default_factory=list)
    copies: list[BlockCopy] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return sum(len(c.token_ids) for c in self.chunks)


@dataclass(frozen=True)
class SampledToken:
    """What the runner hands back for each chunk with ``sample=True``.

    With drafts, ``accepted`` are the drafts the model agreed with (in order) and ``token_id`` the token
    sampled after the last of them: the sequence grows by ``token_ids``.
    """

    seq_id: int
    token_id: int
    logprob: float | None = None
    accepted: tuple[int, ...] = ()
    accepted_logprobs: tuple[float | None, ...] = ()

    @property
    def token_ids(self) -> tuple[int, ...]:
        return (*self.accepted, self.token_id)

    @property
    def logprobs(self) -> tuple[float | None, ...]:
        return (*(self.accepted_logprobs or (None,) * len(self.accepted)), self.logprob)
