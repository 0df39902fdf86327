"""Incremental detokenization of one sample, with stop strings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REPLACEMENT_CHAR = "\ufffd"
NUM_CONTEXT_TOKENS = 5
"""Prompt tokens decoded before the output, so tokenizers that merge leading spaces decode as in context."""


class IncrementalDetokenizer:
    """Turns one sample's token ids into text, a token at a time.

    Invariants: ``text`` never ends inside a UTF-8 character (bytes of a partial character are held until the
    character is complete); ``text`` never contains a stop string (it is cut before the first match);
    ``emitted_text`` is a prefix of ``text`` that holds back any tail that could still become a stop string.
    """

    def __init__(self, tokenizer: Any, prompt_token_ids: Sequence[int], stop: Sequence[str] = (),
                 skip: int = 0) -> None:
        """``skip``: characters at the start of the output that are not part of ``text`` (a healed prompt
        token written again: inference/token_healing.py)."""
        self._tokenizer = tokenizer
        self._ids = list(prompt_token_ids[-NUM_CONTEXT_TOKENS:])
        self._prefix_offset = 0
        self._read_offset = len(self._ids)
        self._stop = list(stop)
        self.text = ""
        self.stopped = False
        self._num_emitted = 0
        self._skip = skip

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)

    def add_token(self, token_id: int) -> bool:
        """Append one token; True when a stop string was found (``text`` is then final)."""
        if self.stopped:
            return True
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix_offset:self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset:])
        if len(new_text) <= len(prefix_text) or new_text.endswith(REPLACEMENT_CHAR):
            return False
        self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
        return self._append(new_text[len(prefix_text):])

    def flush(self) -> None:
        """At the end of a sample: emit held-back bytes (as U+FFFD if they never form a character)."""
        if self.stopped or self._read_offset == len(self._ids):
            return
        prefix_text = self._decode(self._ids[self._prefix_offset:self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset:])
        self._read_offset = len(self._ids)
        if len(new_text) > len(prefix_text):
            self._append(new_text[len(prefix_text):])

    def _append(self, delta: str) -> bool:
        if self._skip:
            dropped = min(self._skip, len(delta))
            delta, self._skip = delta[dropped:], self._skip - dropped
        start = max(len(self.text) - max((len(s) for s in self._stop), default=0) + 1, 0)
        self.text += delta
        cut = min((i for s in self._stop if (i := self.text.find(s, start)) >= 0), default=None)
        if cut is not None:
            self.text = self.text[:cut]
            self.stopped = True
        return self.stopped

    def pop_delta(self, final: bool = False) -> str:
        """Text not handed out yet; unless ``final``, a tail that may start a stop string is held back."""
        end = len(self.text) if final or self.stopped else len(self.text) - self._held_back()
        delta = self.text[self._num_emitted:end] if end > self._num_emitted else ""
        self._num_emitted = max(self._num_emitted, end)
        return delta

    @property
    def emitted_text(self) -> str:
        return self.text[:self._num_emitted]

    def _held_back(self) -> int:
        longest = 0
        for stop in self._stop:
            for k in range(min(len(stop) - 1, len(self.text)), longest, -1):
                if self.text.endswith(stop[:k]):
                    longest = k
                    break
        return longest
