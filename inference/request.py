"""Requests, their lifecycle and what the engine hands back."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Priority(enum.IntEnum):
    """Lower value is scheduled first: typing beats chat beats batch work."""

    INTERACTIVE = 0
    CHAT = 1
    BATCH = 2


class FinishReason(str, enum.Enum):
    STOP = "stop"        # EOS, a stop token id or a stop string
    LENGTH = "length"    # max_tokens or the model's context reached
    ABORT = "abort"      # aborted by the caller


@dataclass
class CompletionOutput:
    """One sample of a request (``index`` < SamplingParams.n)."""

    index: int
    text: str = ""
    """Cumulative detokenized text (stop strings cut off)."""
    delta_text: str = ""
    """Text added since the previous RequestOutput for this sample."""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    finish_reason: FinishReason | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class RequestOutput:
    """State of one request after an engine step."""

    request_id: str
    outputs: list[CompletionOutput]
    num_prompt_tokens: int
    num_cached_tokens: int = 0
    """Prompt tokens served from the prefix cache."""
    finished: bool = False
    healed: str = ""
    """Token healing (``SamplingParams.heal``): the text of the prompt's last token, which the engine took back
    (``num_prompt_tokens`` counts the prompt without it) and each output's first tokens write again; not part
    of their ``text``."""
