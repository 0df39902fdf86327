"""BM25 retrieval of candidate files from the issue text (Okapi BM25, k1=1.5, b=0.75)."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SKIP_DIRS = {".git", "venv", ".tox", "build", "dist", "__pycache__", "node_modules", ".eggs"}


def tokenize(text: str) -> list[str]:
    """Identifiers, also split at snake_case and camelCase boundaries, lower-cased."""
    out: list[str] = []
    for word in _TOKEN.findall(text):
        parts = [p for p in re.split(r"_|(?<=[a-z0-9])(?=[A-Z])", word) if p]
        out.append(word.lower())
        if len(parts) > 1:
            out.extend(p.lower() for p in parts)
    return out


def source_files(root: Path, suffixes: tuple[str, ...] = (".py",), include_tests: bool = False) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts) or path.suffix not in suffixes:
            continue
        if not include_tests and any(p.startswith("test") or p in ("testing", "tests") for p in rel.parts):
            continue
        if path.is_file():
            files.append(path)
    return files


class BM25:
    """Scores documents (token lists) against a query."""

    def __init__(self, docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lens = [len(d) for d in docs]
        self.avg_len = sum(self.lens) / max(1, len(docs))
        df = Counter(t for tf in self.tfs for t in tf)
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: list[str]) -> list[float]:
        out = []
        for tf, length in zip(self.tfs, self.lens, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / max(1e-9, self.avg_len))
            out.append(sum(self.idf.get(q, 0.0) * tf[q] * (self.k1 + 1) / (tf[q] + norm) for q in query if q in tf))
        return out


def rank_files(root: Path, query: str, top_k: int = 3) -> list[Path]:
    """The ``top_k`` source files (relative paths) most similar to ``query``; path tokens count too."""
    files = source_files(root)
    docs = [tokenize(str(f.relative_to(root))) * 3 + tokenize(f.read_text(errors="replace")) for f in files]
    if not docs:
        return []
    scores = BM25(docs).scores(tokenize(query))
    best = sorted(range(len(files)), key=lambda i: -scores[i])[:top_k]
    return [files[i].relative_to(root) for i in best if scores[i] > 0]
