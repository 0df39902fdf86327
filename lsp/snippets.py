"""Snippets from other files, ranked by BM25 similarity (``lsp/bm25.py``) to the code around the cursor.

``SnippetIndex`` keeps an inverted index of overlapping line windows, so a query costs only the postings
of its terms (a keystroke must not re-read the workspace). The chosen snippets are laid out sorted by
(path, first line), so two consecutive requests that pick the same snippets produce the same prompt
prefix (engine prefix cache).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from lsp.bm25 import idf, term_weight, tokenize

WINDOW_LINES = 20
"""Lines per candidate snippet (windows overlap by half)."""
MAX_SOURCE_CHARS = 200_000
"""Only the first MAX_SOURCE_CHARS characters of a file are indexed (bounded work and memory)."""
MAX_QUERY_TERMS = 48
MAX_DF_FRACTION = 0.25
"""Terms found in more than this fraction of windows are ignored in queries (in indexes of at least
MIN_WINDOWS_FOR_DF_CUT windows)."""
MIN_WINDOWS_FOR_DF_CUT = 50


@dataclass(frozen=True)
class SourceFile:
    """A file that may contribute snippets (an open document, a recently edited one, a workspace file)."""

    path: str
    text: str


@dataclass(frozen=True)
class Snippet:
    path: str
    start_line: int
    text: str
    score: float


def windows(text: str) -> list[tuple[int, str]]:
    """Overlapping windows of WINDOW_LINES lines as (first line, text)."""
    lines = text[:MAX_SOURCE_CHARS].splitlines()
    step = WINDOW_LINES // 2
    out = []
    for start in range(0, max(len(lines) - step, 1), step):
        chunk = "\n".join(lines[start : start + WINDOW_LINES])
        if chunk.strip():
            out.append((start, chunk))
    return out


class SnippetIndex:
    """Inverted index over the windows of many files. Thread-safe.

    Invariant: ``_postings[term][window_id]`` is the term frequency of ``term`` in a live window, and
    every live window belongs to exactly one path in ``_files``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, tuple[str, list[int]]] = {}
        self._windows: dict[int, tuple[str, int, str, int]] = {}  # id -> (path, start, text, length)
        self._postings: dict[str, dict[int, int]] = {}
        self._next_id = 0
        self._total_len = 0

    def __len__(self) -> int:
        return len(self._windows)

    def update(self, path: str, text: str) -> None:
        """Index ``text`` as the content of ``path`` (a no-op when it is unchanged)."""
        text = text[:MAX_SOURCE_CHARS]
        with self._lock:
            old = self._files.get(path)
            if old is not None and old[0] == text:
                return
            self._remove(path)
            ids = []
            for start, chunk in windows(text):
                counts = Counter(tokenize(chunk))
                wid, self._next_id = self._next_id, self._next_id + 1
                length = sum(counts.values())
                self._windows[wid] = (path, start, chunk, length)
                self._total_len += length
                for term, tf in counts.items():
                    self._postings.setdefault(term, {})[wid] = tf
                ids.append(wid)
            self._files[path] = (text, ids)

    def remove(self, path: str) -> None:
        with self._lock:
            self._remove(path)

    def _remove(self, path: str) -> None:
        old = self._files.pop(path, None)
        if old is None:
            return
        for wid in old[1]:
            _, _, chunk, length = self._windows.pop(wid)
            self._total_len -= length
            for term in set(tokenize(chunk)):
                posting = self._postings.get(term)
                if posting is not None:
                    posting.pop(wid, None)
                    if not posting:
                        del self._postings[term]

    def rank(self, query: str, exclude: str | None = None) -> list[Snippet]:
        """Windows with a positive BM25 score for ``query``, best first (ties by path and line)."""
        terms = list(dict.fromkeys(tokenize(query)))[-MAX_QUERY_TERMS:]
        with self._lock:
            n = len(self._windows)
            if not n or not terms:
                return []
            avg_len = self._total_len / n or 1.0
            scores: dict[int, float] = {}
            for term in terms:
                posting = self._postings.get(term)
                if not posting or (n >= MIN_WINDOWS_FOR_DF_CUT and len(posting) > MAX_DF_FRACTION * n):
                    continue  # NOTE: near-stopwords cost the most and rank the least
                weight = idf(n, len(posting))
                for wid, tf in posting.items():
                    scores[wid] = scores.get(wid, 0.0) + weight * term_weight(tf, self._windows[wid][3], avg_len)
            found = [Snippet(p, s, t, scores[w]) for w, (p, s, t, _) in
                     ((w, self._windows[w]) for w in scores) if p != exclude]
        found.sort(key=lambda s: (-s.score, s.path, s.start_line))
        return found

    def select(self, query: str, budget_chars: int, exclude: str | None = None) -> list[Snippet]:
        """Best non-overlapping snippets within ``budget_chars``, laid out sorted by (path, first line)."""
        return pick(self.rank(query, exclude), budget_chars)


def pick(ranked: list[Snippet], budget_chars: int) -> list[Snippet]:
    """From ``ranked`` (best first): non-overlapping snippets within ``budget_chars``, sorted by path, line."""
    chosen: list[Snippet] = []
    used = 0
    for snip in ranked:
        if used + len(snip.text) > budget_chars:
            continue
        if any(c.path == snip.path and abs(c.start_line - snip.start_line) < WINDOW_LINES for c in chosen):
            continue
        chosen.append(snip)
        used += len(snip.text)
        if budget_chars - used < 80:
            break
    return sorted(chosen, key=lambda s: (s.path, s.start_line))


def rank(query: str, sources: list[SourceFile]) -> list[Snippet]:
    """``SnippetIndex.rank`` over a throw-away index of ``sources``."""
    return _index(sources).rank(query)


def select(query: str, sources: list[SourceFile], budget_chars: int) -> list[Snippet]:
    """``SnippetIndex.select`` over a throw-away index of ``sources``."""
    return _index(sources).select(query, budget_chars)


def _index(sources: list[SourceFile]) -> SnippetIndex:
    index = SnippetIndex()
    for s in sources:
        index.update(s.path, s.text)
    return index
