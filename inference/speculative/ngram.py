"""Prompt-lookup drafts: the tokens that followed the latest earlier occurrence of the sequence's last n tokens.

Code repeats itself (identifiers, call patterns, the rest of a line that already exists below the cursor
in a FIM prompt), so the continuation of an earlier match is often exactly what the model writes next.
Drafts cost no model call; a wrong one costs only the rows it adds to the verification forward.
Torch-free.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence as Seq

from inference.sequence import Sequence


class NgramIndex:
    """Where each n-gram (``min_n <= n <= max_n``) of one growing token list last started.

    Invariant: after ``extend(tokens)``, ``starts[n][gram]`` is the largest ``i`` with
    ``tokens[i:i+n] == gram`` and ``i + n <= len(tokens) - 1``: n-grams ending at the newest token are left
    out, so the sequence's own suffix never matches itself.
    """

    def __init__(self, min_n: int, max_n: int) -> None:
        self.min_n, self.max_n = min_n, max_n
        self.starts: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in range(min_n, max_n + 1)}
        self.num_indexed = 0
        """Tokens whose n-grams ending there are indexed (all but the newest)."""

    def extend(self, tokens: Seq[int]) -> None:
        """Index n-grams ending before the newest token of ``tokens`` (which only ever grows)."""
        end = len(tokens) - 1
        for stop in range(self.num_indexed + 1, end + 1):  # n-grams tokens[stop - n:stop]
            for n, starts in self.starts.items():
                if stop >= n:
                    starts[tuple(tokens[stop - n:stop])] = stop - n
        self.num_indexed = max(self.num_indexed, end)

    def propose(self, tokens: Seq[int], k: int) -> list[int]:
        """Up to ``k`` tokens that followed the latest earlier occurrence of the longest matching suffix."""
        self.extend(tokens)
        for n in range(self.max_n, self.min_n - 1, -1):
            if len(tokens) <= n:
                continue
            start = self.starts[n].get(tuple(tokens[-n:]))
            if start is not None:
                return list(tokens[start + n:start + n + k])
        return []


class NgramProposer:
    """Drafts for each decoding sequence from its own prompt and output (prompt lookup)."""

    step_seconds = 0.0
    """Lookups cost next to nothing next to a model step."""

    def __init__(self, min_n: int = 2, max_n: int = 4) -> None:
        self.min_n, self.max_n = min_n, max_n
        self._indexes: weakref.WeakKeyDictionary[Sequence, NgramIndex] = weakref.WeakKeyDictionary()

    def propose(self, seqs: list[Sequence], limits: list[int]) -> list[list[int]]:
        """At most ``limits[i]`` drafts for ``seqs[i]``; an empty list where nothing matches."""
        drafts = []
        for seq, limit in zip(seqs, limits, strict=True):
            index = self._indexes.get(seq)
            if index is None:
                index = self._indexes[seq] = NgramIndex(self.min_n, self.max_n)
            drafts.append(index.propose(seq.token_ids, limit) if limit > 0 else [])
        return drafts
