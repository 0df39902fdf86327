"""Token healing: the prompt's last token is taken back and generated again, constrained to its text.

A prompt that ends inside a word ("...at least min_len cha") ends on a token the tokenizer would not have
chosen had the word been complete ("cha" where "characters" is "char" + "acters"), and the model, which
continues token by token, writes "acters": "chaacters". Under the editor's spm layout every keystroke inside
a word is such a prompt. With ``SamplingParams.heal`` the engine drops the prompt's last token and restricts
the first generated tokens to those that agree with its text (a token starting with what is left of it, or a
non-empty part of it), so the model picks the token boundary; the output text starts after the prompt's
end as usual (the re-generated part is not reported). Guidance and llama.cpp call this token healing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any


def take_back(token_ids: list[int], tokenizer: Any, special_ids: set[int]) -> tuple[list[int], str]:
    """(the prompt without its last token, that token's text); unchanged and "" when the last token is
    special, decodes to nothing or is the only one."""
    if len(token_ids) < 2 or token_ids[-1] in special_ids:
        return token_ids, ""
    text = tokenizer.decode(token_ids[-1:], skip_special_tokens=False)
    if not text or "\ufffd" in text:  # part of a multi-byte character: leave it
        return token_ids, ""
    return token_ids[:-1], text


def special_ids(tokenizer: Any, eos_token_ids: Iterable[int] = ()) -> set[int]:
    """Token ids never taken back nor allowed in their place: the tokenizer's special tokens and EOS."""
    return set(getattr(tokenizer, "all_special_ids", ())) | set(eos_token_ids)


class VocabText:
    """Every token's text, sorted, to find the tokens that agree with a text (built on first use)."""

    def __init__(self, tokenizer: Any, special: set[int]) -> None:
        self._tokenizer = tokenizer
        self._special = special
        self._texts: list[str] | None = None
        self._ids: list[int] = []
        self._by_text: dict[str, list[int]] = {}

    def _build(self) -> None:
        pairs = []
        for i in range(len(self._tokenizer)):
            if i in self._special:
                continue
            text = self._tokenizer.decode([i], skip_special_tokens=False)
            if text and "\ufffd" not in text:
                pairs.append((text, i))
        pairs.sort()
        self._texts = [t for t, _ in pairs]
        self._ids = [i for _, i in pairs]
        for text, i in pairs:
            self._by_text.setdefault(text, []).append(i)

    def build(self) -> None:
        """Index the vocabulary now (~0.3–0.9 s for 150k tokens on 2 cores) rather than on first use."""
        if self._texts is None:
            self._build()

    def agreeing(self, rest: str) -> list[int]:
        """Tokens whose text starts with ``rest`` or is a non-empty prefix of it."""
        self.build()
        texts = self._texts
        lo = bisect.bisect_left(texts, rest)
        hi = bisect.bisect_left(texts, rest + "\U0010ffff")
        out = self._ids[lo:hi]
        for k in range(1, len(rest)):
            out.extend(self._by_text.get(rest[:k], ()))
        return out


def rest_of(forced: str, generated: Sequence[int], tokenizer: Any) -> str:
    """What of ``forced`` the tokens ``generated`` so far have not written yet."""
    if not forced:
        return ""
    done = tokenizer.decode(list(generated), skip_special_tokens=False) if generated else ""
    return forced[len(done):] if len(done) < len(forced) else ""


class Healing:
    """The engine's side: which requests still have to write a taken-back token's text, their drafts held
    and their sampling rows constrained until they have."""

    def __init__(self, tokenizer: Any, eos_token_ids: Iterable[int] = ()) -> None:
        self._tokenizer = tokenizer
        self._special = special_ids(tokenizer, eos_token_ids)
        self._vocab = VocabText(tokenizer, self._special)
        self._texts: dict[str, str] = {}
        """request id -> the text its samples write first."""

    def take_back(self, request_id: str, token_ids: list[int]) -> tuple[list[int], str]:
        token_ids, text = take_back(token_ids, self._tokenizer, self._special)
        if text:
            self._texts[request_id] = text
        return token_ids, text

    def prepare(self) -> None:
        """Build the vocabulary index ahead of the first healed request (an editor's first suggestion)."""
        self._vocab.build()

    def forget(self, request_id: str) -> None:
        self._texts.pop(request_id, None)

    def rest(self, seq: Any) -> str:
        """What ``seq`` (a Sequence) has still to write of its request's taken-back text."""
        text = self._texts.get(seq.request_id)
        generated = seq.token_ids[seq.num_prompt_tokens:]
        if not text or len(generated) >= len(text):  # every token writes at least one character
            return ""
        return rest_of(text, generated, self._tokenizer)

    def hold_drafts(self, running: Sequence[Any]) -> None:
        """No drafts for a sequence still writing its taken-back text (its row is constrained)."""
        if self._texts:
            for seq in running:
                if seq.draft_token_ids and self.rest(seq):
                    seq.draft_token_ids = []

    def constrain(self, scheduled: Sequence[Any], chunks: list[Any]) -> None:
        """Restrict the sampling row of each chunk whose sequence still writes its taken-back text."""
        if not self._texts:
            return
        for i, (seq, chunk) in enumerate(zip(scheduled, chunks, strict=True)):
            if chunk.sample and (rest := self.rest(seq)):
                chunks[i] = replace(chunk, allowed_token_ids=tuple(self._vocab.agreeing(rest)))
