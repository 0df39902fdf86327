"""Pick next tokens from logits: penalties, then greedy, temperature, top-k, top-p; seeded per sequence.

A seeded sample depends only on (params.seed, sample_index, num_generated) and the logits, never on what
else is in the batch. Logprobs are of the model's raw distribution (temperature 1, no penalties, no
top-k/top-p).
"""

from __future__ import annotations

import torch

from inference.batch import SampledToken, SeqChunk
from inference.penalties import penalize_chunks

_SEED_MASK = (1 << 63) - 1


def sample(logits: torch.Tensor, chunks: list[SeqChunk], rng: torch.Generator) -> list[SampledToken]:
    """One token per row of ``logits`` ``[n, vocab]`` (fp32) for the sampling ``chunks`` (same order).

    ``rng`` seeds the rows whose params have no seed (those depend on the order of calls).
    """
    if logits.shape[0] != len(chunks):
        raise ValueError(f"{logits.shape[0]} logit rows for {len(chunks)} sampling chunks")
    scores = penalize_chunks(logits, chunks)
    tokens = scores.argmax(dim=-1)
    for row, chunk in enumerate(chunks):
        if not chunk.params.greedy:
            tokens[row] = _sample_row(scores[row], chunk, _generator(chunk, rng))
    token_list = tokens.tolist()
    logprobs: list[float | None] = [None] * len(chunks)
    want = [i for i, c in enumerate(chunks) if c.params.logprobs]
    if want:
        rows = torch.tensor(want)
        lp = torch.log_softmax(logits[rows], dim=-1).gather(1, tokens[rows].unsqueeze(1)).squeeze(1)
        for i, value in zip(want, lp.tolist(), strict=True):
            logprobs[i] = value
    return [
        SampledToken(seq_id=c.seq_id, token_id=t, logprob=lp)
        for c, t, lp in zip(chunks, token_list, logprobs, strict=True)
    ]


def _generator(chunk: SeqChunk, rng: torch.Generator) -> torch.Generator:
    seed = chunk.params.seed
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,), generator=rng))
    mixed = hash((seed, chunk.sample_index, chunk.num_generated)) & _SEED_MASK
    return torch.Generator(device="cpu").manual_seed(mixed)


def _sample_row(logits: torch.Tensor, chunk: SeqChunk, gen: torch.Generator) -> int:
    params = chunk.params
    scores = logits.float() / params.temperature  # [vocab]
    candidates = None
    if 0 < params.top_k < scores.shape[0]:
        scores, candidates = scores.topk(params.top_k)  # sorted descending
    if params.top_p < 1.0:
        if candidates is None:
            scores, candidates = scores.sort(descending=True)
        probs = scores.softmax(-1)
        cutoff = (probs.cumsum(-1) - probs) >= params.top_p  # drop tokens once the mass before them >= p
        scores = scores.masked_fill(cutoff, float("-inf"))
    probs = scores.softmax(-1)
    noise = torch.empty(probs.shape, dtype=torch.float32).exponential_(generator=gen)
    choice = int((probs.cpu() / noise).argmax())
    return choice if candidates is None else int(candidates[choice])
