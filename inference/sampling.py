"""Sampling parameters for one request."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SamplingParams:
    """How to pick tokens for one request.

    All fields are validated in ``__post_init__``; an invalid value raises ``ValueError`` naming the field.
    """

    temperature: float = 0.0
    """0 means greedy (argmax)."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]."""
    top_k: int = 0
    """Keep the k most likely tokens; 0 disables."""
    max_tokens: int = 64
    """Most new tokens to generate (>= 1)."""
    stop: list[str] = field(default_factory=list)
    """Stop strings; the output is cut before the first match and never contains it."""
    stop_token_ids: list[int] = field(default_factory=list)
    """Token ids that end the sequence (in addition to the tokenizer's EOS unless ignore_eos)."""
    ignore_eos: bool = False
    """Keep generating past EOS (benchmarks)."""
    seed: int | None = None
    """Per-request seed: the same seed gives the same samples whatever else is in the batch."""
    n: int = 1
    """Number of samples sharing the prompt's KV."""
    greedy_first: bool = False
    """With n > 1: sample 0 is the greedy continuation (argmax at every step), the others sample at
    ``temperature`` (best-of-n that never loses the greedy answer)."""
    logprobs: bool = False
    """Return the log-probability of each sampled token."""
    repetition_penalty: float = 1.0
    """> 1 discourages every token already in the prompt or the output (HF semantics); 1.0 = off."""
    frequency_penalty: float = 0.0
    """Subtracted from a token's logit once per time it was generated (OpenAI semantics), in [-2, 2]."""
    presence_penalty: float = 0.0
    """Subtracted from a token's logit if it was generated at all (OpenAI semantics), in [-2, 2]."""
    heal: bool = False
    """Token healing: the prompt's last token is generated again, constrained to agree with its text, so a
    prompt ending inside a word is continued as the word (the output still starts at the prompt's end;
    see inference/token_healing.py)."""

    def __post_init__(self) -> None:
        if not isinstance(self.temperature, (int, float)) or self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an int >= 0, got {self.top_k!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be an int >= 1, got {self.max_tokens!r}")
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be an int >= 1, got {self.n!r}")
        if not isinstance(self.heal, bool):
            raise ValueError(f"heal must be a bool, got {self.heal!r}")
        if not isinstance(self.greedy_first, bool):
            raise ValueError(f"greedy_first must be a bool, got {self.greedy_first!r}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError("stop must be a list of non-empty strings")
        if any(not isinstance(t, int) or t < 0 for t in self.stop_token_ids):
            raise ValueError("stop_token_ids must be non-negative ints")
        if not _number(self.repetition_penalty) or not 0 < self.repetition_penalty <= 10:
            raise ValueError(f"repetition_penalty must be in (0, 10], got {self.repetition_penalty!r}")
        for name in ("frequency_penalty", "presence_penalty"):
            if not _number(getattr(self, name)) or not -2 <= getattr(self, name) <= 2:
                raise ValueError(f"{name} must be in [-2, 2], got {getattr(self, name)!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def penalized(self) -> bool:
        """True when any penalty is on (the runner then needs the sequence's token history)."""
        return self.repetition_penalty != 1.0 or self.frequency_penalty != 0.0 or self.presence_penalty != 0.0


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class SamplingDefaults:
    """A model family's recommended sampling settings (its ``generation_config.json``); None = not set.

    Applied to a chat request only for the fields the request leaves out (as vLLM's
    ``--generation-config auto`` does), so a client that asks for something always gets it.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    def as_dict(self) -> dict[str, float | int]:
        """The fields that are set."""
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_generation_config(cls, config: dict) -> SamplingDefaults:
        """The sampling fields of an HF ``generation_config.json`` (none when it does not sample)."""
        if not config.get("do_sample"):
            return cls()
        names = ("temperature", "top_p", "top_k", "repetition_penalty")
        return cls(**{k: config[k] for k in names if isinstance(config.get(k), (int, float))})
