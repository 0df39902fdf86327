"""BM25 retrieval of candidate files from the issue text (the language server's BM25, ``lsp/bm25.py``)."""

from __future__ import annotations

from pathlib import Path

from lsp.bm25 import BM25, tokenize

SKIP_DIRS = {".git", "venv", ".tox", "build", "dist", "__pycache__", "node_modules", ".eggs"}


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


def rank_files(root: Path, query: str, top_k: int = 3) -> list[Path]:
    """The ``top_k`` source files (relative paths) most similar to ``query``; path tokens count too."""
    files = source_files(root)
    docs = [tokenize(str(f.relative_to(root))) * 3 + tokenize(f.read_text(errors="replace")) for f in files]
    if not docs:
        return []
    scores = BM25(docs).scores(tokenize(query))
    best = sorted(range(len(files)), key=lambda i: -scores[i])[:top_k]
    return [files[i].relative_to(root) for i in best if scores[i] > 0]
