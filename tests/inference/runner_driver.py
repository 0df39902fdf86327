"""Drive a ModelRunner directly with hand-built StepBatches (no scheduler): paged, shuffled block ids."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from inference.batch import SeqChunk, StepBatch
from inference.model_runner import ModelRunner
from inference.sampling import SamplingParams


@dataclass
class DrivenSeq:
    seq_id: int
    tokens: list[int]
    num_computed: int = 0
    block_table: list[int] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)


class BlockHandout:
    """Hands out KV block ids in a shuffled order, so block tables are never contiguous."""

    def __init__(self, num_blocks: int, seed: int = 0) -> None:
        self.free = list(range(num_blocks))
        random.Random(seed).shuffle(self.free)

    def grow(self, seq: DrivenSeq, num_tokens: int, block_size: int) -> None:
        while len(seq.block_table) * block_size < num_tokens:
            seq.block_table.append(self.free.pop())


def generate(
    runner: ModelRunner,
    prompts: list[list[int]],
    max_new_tokens: int,
    params: SamplingParams | None = None,
    prefill_chunk: int | None = None,
    seed: int = 0,
) -> list[list[int]]:
    """Generate for all prompts in one running batch; stops a sequence at EOS. Prompts are prefilled in
    chunks of ``prefill_chunk`` tokens (all at once when None), mixed with other sequences' decodes."""
    params = params or SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    bs = runner.block_size
    blocks = BlockHandout(runner.num_blocks, seed)
    seqs = [DrivenSeq(i, list(p)) for i, p in enumerate(prompts)]
    running = list(seqs)
    while running:
        chunks = []
        for s in running:
            todo = len(s.tokens) - s.num_computed
            n = todo if prefill_chunk is None else min(todo, prefill_chunk)
            blocks.grow(s, s.num_computed + n, bs)
            chunks.append(SeqChunk(
                seq_id=s.seq_id, token_ids=s.tokens[s.num_computed : s.num_computed + n],
                num_computed_tokens=s.num_computed, block_table=list(s.block_table),
                sample=s.num_computed + n == len(s.tokens), params=params, num_generated=len(s.generated),
            ))
        sampled = {t.seq_id: t.token_id for t in runner.execute(StepBatch(chunks=chunks))}
        for s, c in zip(running, chunks, strict=True):
            s.num_computed += len(c.token_ids)
            if s.seq_id in sampled:
                tok = sampled[s.seq_id]
                s.generated.append(tok)
                s.tokens.append(tok)
        running = [s for s in running if len(s.generated) < max_new_tokens
                   and not (s.generated and s.generated[-1] in runner.eos_token_ids)]
    return [s.generated for s in seqs]
