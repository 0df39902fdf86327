"""Per-request output state in the engine: text, stop rules and streaming deltas of each sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inference.detokenizer import IncrementalDetokenizer
from inference.request import CompletionOutput, FinishReason, RequestOutput
from inference.sampling import SamplingParams
from inference.sequence import Sequence


@dataclass
class SampleState:
    index: int
    detokenizer: IncrementalDetokenizer
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: FinishReason | None = None


class RequestState:
    """What the caller has been told about one request.

    Invariant: each sample's ``finish_reason`` is set exactly once; the concatenation of a sample's
    ``delta_text`` values equals its final ``text``.
    """

    def __init__(self, request_id: str, prompt_token_ids: list[int], params: SamplingParams,
                 tokenizer: Any, eos_token_ids: set[int], max_model_len: int, healed: str = "") -> None:
        """``healed``: the text of a prompt token taken back for token healing (written again by the
        output's first tokens, not reported)."""
        self.request_id = request_id
        self.prompt_token_ids = prompt_token_ids
        self.healed = healed
        self.params = params
        self.num_cached_tokens = 0
        self._eos = set() if params.ignore_eos else set(eos_token_ids)
        self._stop_ids = set(params.stop_token_ids)
        self._max_model_len = max_model_len
        self.samples = [
            SampleState(i, IncrementalDetokenizer(tokenizer, prompt_token_ids, params.stop, skip=len(healed)))
            for i in range(params.n)
        ]

    @property
    def finished(self) -> bool:
        return all(s.finish_reason is not None for s in self.samples)

    def on_token(self, seq: Sequence, index: int = -1) -> FinishReason | None:
        """Take the sequence's token at ``index`` (its newest by default; a step that accepted drafts hands
        them over one by one, oldest first); returns why the sample ends, if it does."""
        index %= seq.num_tokens
        sample = self.samples[seq.sample_index]
        token_id = seq.token_ids[index]
        sample.token_ids.append(token_id)
        if seq.logprobs:
            sample.logprobs.append(seq.logprobs[index - seq.num_prompt_tokens])
        if seq.num_cached_tokens is not None:
            self.num_cached_tokens = max(self.num_cached_tokens, seq.num_cached_tokens)
        if token_id in self._stop_ids or token_id in self._eos:
            return FinishReason.STOP
        if sample.detokenizer.add_token(token_id):
            return FinishReason.STOP
        if len(sample.token_ids) >= self.params.max_tokens or index + 1 >= self._max_model_len:
            return FinishReason.LENGTH
        return None

    def finish(self, sample_index: int, reason: FinishReason) -> None:
        sample = self.samples[sample_index]
        if sample.finish_reason is None:
            sample.finish_reason = reason
            sample.detokenizer.flush()

    def abort(self) -> None:
        for sample in self.samples:
            self.finish(sample.index, FinishReason.ABORT)

    def output(self) -> RequestOutput:
        """Snapshot with cumulative text and the delta since the previous snapshot."""
        outputs = []
        for s in self.samples:
            final = s.finish_reason is not None
            delta = s.detokenizer.pop_delta(final=final)
            outputs.append(CompletionOutput(
                index=s.index, text=s.detokenizer.emitted_text, delta_text=delta, token_ids=list(s.token_ids),
                logprobs=list(s.logprobs) if self.params.logprobs else None, finish_reason=s.finish_reason,
            ))
        return RequestOutput(self.request_id, outputs, num_prompt_tokens=len(self.prompt_token_ids),
                             num_cached_tokens=self.num_cached_tokens, finished=self.finished, healed=self.healed)
