"""Pick next tokens from logits: penalties, then greedy, temperature, top-k, top-p; seeded per sequence.
With ``greedy_first``, sample 0 of an n > 1 request is greedy and the others sample.

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
    """Tokens for the sampling ``chunks`` from their rows of ``logits`` (fp32, in chunk order).

    A chunk has ``num_draft_tokens + 1`` rows (its last rows): row i is sampled exactly as plain decoding
    would sample output position ``num_generated + i`` (argmax, or the seeded generator of that position),
    and draft i is accepted while it equals the token sampled at row i. ``rng`` seeds the rows whose params
    have no seed (those depend on the order of calls).
    """
    num_rows = sum(c.num_draft_tokens + 1 for c in chunks)
    if logits.shape[0] != num_rows:
        raise ValueError(f"{logits.shape[0]} logit rows for {len(chunks)} sampling chunks ({num_rows} rows)")
    scores = penalize_chunks(logits, chunks)
    if any(c.allowed_token_ids for c in chunks):
        scores = _constrain(scores, chunks)
    argmax = scores.argmax(dim=-1).tolist()
    out, row = [], 0
    for chunk in chunks:
        drafts = chunk.token_ids[len(chunk.token_ids) - chunk.num_draft_tokens:] if chunk.num_draft_tokens else []
        tokens: list[int] = []
        for i in range(len(drafts) + 1):
            token = argmax[row + i] if _greedy(chunk) else _sample_row(
                scores[row + i], chunk, _generator(chunk, rng, i))
            tokens.append(token)
            if i == len(drafts) or token != drafts[i]:
                break
        out.append(_sampled(logits[row:row + len(tokens)], chunk, tokens))
        row += len(drafts) + 1
    return out


def _constrain(scores: torch.Tensor, chunks: list[SeqChunk]) -> torch.Tensor:
    """A copy of ``scores`` where a chunk's row with ``allowed_token_ids`` keeps only those tokens."""
    out, row = scores.clone(), 0
    for chunk in chunks:
        if chunk.allowed_token_ids:
            if chunk.num_draft_tokens:
                raise ValueError(f"seq {chunk.seq_id}: allowed_token_ids with drafts")
            allowed = torch.as_tensor(list(chunk.allowed_token_ids), dtype=torch.long)
            kept = out[row, allowed].clone()
            out[row].fill_(float("-inf"))
            out[row, allowed] = kept
        row += chunk.num_draft_tokens + 1
    return out


def _greedy(chunk: SeqChunk) -> bool:
    return chunk.params.greedy or (chunk.params.greedy_first and chunk.sample_index == 0)


def _sampled(rows: torch.Tensor, chunk: SeqChunk, tokens: list[int]) -> SampledToken:
    """``tokens[:-1]`` are accepted drafts, ``tokens[-1]`` the next token; logprobs from ``rows``."""
    logprobs: list[float | None] = [None] * len(tokens)
    if chunk.params.logprobs:
        lp = torch.log_softmax(rows.float(), dim=-1).gather(1, torch.tensor(tokens).unsqueeze(1)).squeeze(1)
        logprobs = lp.tolist()
    return SampledToken(seq_id=chunk.seq_id, token_id=tokens[-1], logprob=logprobs[-1],
                        accepted=tuple(tokens[:-1]), accepted_logprobs=tuple(logprobs[:-1]))


def _generator(chunk: SeqChunk, rng: torch.Generator, offset: int = 0) -> torch.Generator:
    """The generator of output position ``chunk.num_generated + offset`` of this sample."""
    seed = chunk.params.seed
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,), generator=rng))
    mixed = hash((seed, chunk.sample_index, chunk.num_generated + offset)) & _SEED_MASK
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
