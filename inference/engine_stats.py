"""The engine's counters, one snapshot per step: what /metrics and the benchmarks report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EngineStats:
    """Counters for /metrics and benchmarks (cumulative since start unless named ``num_*_now``)."""

    num_waiting: int
    num_running: int
    num_blocks_total: int
    num_blocks_free: int
    num_blocks_cached: int
    num_blocks_owned: int
    prefix_hit_rate: float
    """Prompt tokens served from the prefix cache / prompt tokens admitted."""
    prefix_hit_tokens: int
    prefix_queried_tokens: int
    prefix_hit_requests: int
    num_tokens_processed: int
    """Tokens run through the model (prefill chunks + decodes)."""
    num_generated_tokens: int
    num_steps: int
    max_batch_size: int
    """Most sequences in one step so far."""
    num_preemptions: int
    num_requests_finished: int
    num_draft_tokens: int = 0
    """Speculative drafts verified."""
    num_accepted_tokens: int = 0
    """Drafts the model accepted (each saves one decode step)."""
    num_interrupted_steps: int = 0
    """Steps ended between two layers because every request in them was aborted meanwhile."""

    @property
    def draft_acceptance_rate(self) -> float:
        return self.num_accepted_tokens / self.num_draft_tokens if self.num_draft_tokens else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
