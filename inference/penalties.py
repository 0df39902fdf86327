"""Repetition, frequency and presence penalties: a pure function over a batch of logits rows.

Semantics (one row = one sequence about to sample its next token):
- ``repetition_penalty`` (HF transformers' ``RepetitionPenaltyLogitsProcessor``, also vLLM's): every token
  that occurs in the prompt or in the generated text gets its logit divided by the penalty when positive,
  multiplied by it when negative (1.0 = off).
- ``frequency_penalty`` / ``presence_penalty`` (OpenAI's definition): ``logit[t] -= frequency * count(t) +
  presence * (count(t) > 0)``, where ``count`` counts ``t`` in the generated tokens only (0.0 = off).

Repetition is applied first, then frequency/presence, as vLLM does. Rows without penalties are untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from inference.batch import SeqChunk
from inference.sampling import SamplingParams


def apply_penalties(
    logits: torch.Tensor,
    params: Sequence[SamplingParams],
    prompt_ids: Sequence[Sequence[int]],
    output_ids: Sequence[Sequence[int]],
) -> torch.Tensor:
    """Penalised copy of ``logits`` ``[n, vocab]``; row i uses ``params[i]`` over its own token history.

    Batched: one scatter per history kind for all rows. Token ids outside the vocabulary are ignored.
    """
    if not (len(params) == len(prompt_ids) == len(output_ids) == logits.shape[0]):
        raise ValueError("apply_penalties needs one params, prompt and output history per logits row")
    rows = [i for i, p in enumerate(params) if p.penalized]
    if not rows:
        return logits
    out = logits.clone()
    vocab = logits.shape[1]
    sub = out[rows].float()  # [r, vocab]
    output_counts = _counts([output_ids[i] for i in rows], vocab, sub.device)  # [r, vocab]
    prompt_seen = _counts([prompt_ids[i] for i in rows], vocab, sub.device) > 0
    seen = prompt_seen | (output_counts > 0)
    rep = _column([params[i].repetition_penalty for i in rows], sub)
    penalised = torch.where(sub > 0, sub / rep, sub * rep)
    sub = torch.where(seen, penalised, sub)
    freq = _column([params[i].frequency_penalty for i in rows], sub)
    pres = _column([params[i].presence_penalty for i in rows], sub)
    sub = sub - freq * output_counts - pres * (output_counts > 0).to(sub.dtype)
    out[rows] = sub.to(out.dtype)
    return out


def _column(values: list[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).unsqueeze(1)  # [r, 1]


def _counts(histories: list[Sequence[int]], vocab: int, device: torch.device) -> torch.Tensor:
    """``[len(histories), vocab]`` float counts of each token id in each history."""
    longest = max((len(h) for h in histories), default=0)
    counts = torch.zeros(len(histories), vocab + 1, dtype=torch.float32, device=device)
    if longest == 0:
        return counts[:, :vocab]
    ids = torch.full((len(histories), longest), vocab, dtype=torch.long)  # pad = the spill column
    for row, history in enumerate(histories):
        if history:
            ids[row, : len(history)] = torch.tensor(list(history), dtype=torch.long)
    ids = torch.where((ids < 0) | (ids > vocab), vocab, ids).to(device)
    counts.scatter_add_(1, ids, torch.ones(ids.shape, dtype=torch.float32, device=device))
    return counts[:, :vocab]


def penalize_chunks(logits: torch.Tensor, chunks: Sequence[SeqChunk]) -> torch.Tensor:
    """``apply_penalties`` for the sampling rows of a step: ``num_draft_tokens + 1`` rows per chunk, in order;
    row i of a chunk counts the chunk's first i drafts as generated tokens (what plain decoding would have
    generated before that position)."""
    if not any(c.params is not None and c.params.penalized for c in chunks):
        return logits
    params, prompts, outputs = [], [], []
    for c in chunks:
        drafts = list(c.token_ids[len(c.token_ids) - c.num_draft_tokens:]) if c.num_draft_tokens else []
        for i in range(c.num_draft_tokens + 1):
            if c.params is None or not c.params.penalized or c.history is None:
                params.append(_OFF)
                prompts.append(())
                outputs.append(())
                continue
            num_prompt = c.num_prompt_tokens or 0
            params.append(c.params)
            prompts.append(c.history[:num_prompt])
            outputs.append([*c.history[num_prompt:], *drafts[:i]])
    return apply_penalties(logits, params, prompts, outputs)


_OFF = SamplingParams()
