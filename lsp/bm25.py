"""Okapi BM25, the one of the code base: the tokenizer, the term weight and a small scorer over token lists.

The language server ranks snippets for the prompt with it (``lsp/snippets.py``, over an inverted index);
the SWE-bench pipeline ranks a repository's files against the issue text (``evals/swebench/retrieval.py``).
``idf`` is the "plus one" form (never negative, as Lucene's), so a term found in most documents still
counts a little instead of pulling a score below zero.
"""

from __future__ import annotations

import math
import re
from collections import Counter

K1 = 1.2
"""Term-frequency saturation."""
B = 0.75
"""How much a long document's term frequencies are discounted."""

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{1,}")


def tokenize(text: str) -> list[str]:
    """Identifier-like words of two or more characters, lower-cased, also split at snake_case and camelCase
    boundaries (parts of one character are dropped)."""
    words: list[str] = []
    for word in _WORD.findall(text):
        words.append(word.lower())
        parts = [p for p in re.split(r"_|(?<=[a-z])(?=[A-Z])", word) if len(p) > 1]
        if len(parts) > 1:
            words.extend(p.lower() for p in parts)
    return words


def idf(num_docs: int, doc_freq: int) -> float:
    """Inverse document frequency of a term found in ``doc_freq`` of ``num_docs`` documents."""
    return math.log(1 + (num_docs - doc_freq + 0.5) / (doc_freq + 0.5))


def term_weight(tf: int, length: int, avg_len: float) -> float:
    """BM25's saturated, length-normalised frequency of a term found ``tf`` times in a document of ``length``
    terms (``avg_len``: the collection's mean length); multiply by ``idf`` for the term's score."""
    return tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / max(avg_len, 1e-9)))


class BM25:
    """Scores a fixed list of documents (token lists) against queries."""

    def __init__(self, docs: list[list[str]]) -> None:
        self.tfs = [Counter(d) for d in docs]
        self.lens = [len(d) for d in docs]
        self.avg_len = sum(self.lens) / max(1, len(docs))
        df = Counter(t for tf in self.tfs for t in tf)
        self.idf = {t: idf(len(docs), f) for t, f in df.items()}

    def scores(self, query: list[str]) -> list[float]:
        """One score per document, in document order (0.0: no query term in it)."""
        return [sum(self.idf[q] * term_weight(tf[q], length, self.avg_len) for q in query if q in tf)
                for tf, length in zip(self.tfs, self.lens, strict=True)]
