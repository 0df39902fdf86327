"""Choose the licence index's fingerprint parameters on the TUNING split only.

For each (k, w, max projects per hash, background, literal length) it builds the index of every
included project (from the sdists already in the cache: run scripts/build_scan_index.sh first),
matches the tuning split's copied functions (verbatim and renamed) and permissive functions, and
reports recall / false positives for a grid of thresholds (``MatchThresholds``) next to the saved
index size. The measuring split is never looked at here.

Usage: PYTHONPATH=. python scripts/tune_scan_index.py [--cache DIR] [--out runs/scan-tune.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.licence import negatives, positives, score
from security.config import MatchThresholds
from security.corpus import renamed
from security.fingerprint import TokenCodes, fingerprints_of_codes, token_codes
from security.index import FingerprintIndex
from security.index_sources import included_projects, read_candidates, source_files
from security.permissive_corpus import background_texts

_FIELDS = ("codes", "lines", "literal_hashes", "literal_chars", "literal_lines")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "codeloop" / "scan")
    parser.add_argument("--out", type=Path, default=Path("runs/scan-tune.json"))
    parser.add_argument("--k", default="15,20,25")
    parser.add_argument("--w", default="6,8,12")
    parser.add_argument("--max-projects", default="1,2,3")
    parser.add_argument("--per-project", type=int, default=30)
    parser.add_argument("--per-package", type=int, default=15)
    parser.add_argument("--background", default="0,1", help="1: keep k-grams of permissive background code out")
    parser.add_argument("--literal-chars", default="0,40", help="min_literal_chars of literal fingerprints; 0: none")
    parser.add_argument("--min-matches", default="2,3,4")
    parser.add_argument("--min-fraction", default="0.2,0.3,0.4,0.5")
    parser.add_argument("--min-tokens", default="0,25,30,35,40,50,60")
    parser.add_argument("--show", metavar="MIN_MATCHES,MIN_FRACTION,MIN_TOKENS", default="2,0.3,0",
                        help="list the false positives and misses of these thresholds (on stderr)")
    parser.add_argument("--ship", metavar="K,W,MAX_PROJECTS,BACKGROUND,LITERAL_CHARS",
                        help="instead of tuning: write the index with these parameters to security/data/")
    args = parser.parse_args()
    projects, verdicts = included_projects(read_candidates(), args.cache, download=False)
    started = time.perf_counter()
    codes = [c for p, sdist in projects for c in _cached_codes(p, sdist, args.cache / "codes")]
    if args.ship:
        return _ship(codes, verdicts, *_ints(args.ship), args.cache / "codes")
    print(f"{len(projects)} projects, {len(codes)} files tokenised in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    pos = positives(projects, "tune", args.per_project, seed=0)
    neg = [f for f in negatives("tune", args.per_package, seed=0) if "/codeloop" not in f.origin]
    print(f"tuning split: {len(pos)} positives, {len(neg)} negatives", file=sys.stderr)
    background = _cached_background(args.cache / "codes")
    results = []
    grid = itertools.product(_ints(args.k), _ints(args.w), _ints(args.max_projects), _ints(args.background),
                             _ints(args.literal_chars))
    for k, w, max_projects, use_background, literal_chars in grid:
        index = _index(codes, background if use_background else None, k, w, max_projects, literal_chars or None)
        size = _saved_bytes(index)
        verbatim = [index.best_match(f.source) for _, f in pos]
        renamed_matches = [index.best_match(renamed(f.source)) for _, f in pos]
        negative = [index.best_match(f.source) for f in neg]
        params = {"k": k, "w": w, "max_projects": max_projects, "background": use_background,
                  "literal_chars": literal_chars}
        thresholds = itertools.product(_ints(args.min_matches), _floats(args.min_fraction), _ints(args.min_tokens))
        for min_matches, min_fraction, min_tokens in thresholds:
            chosen = MatchThresholds(min_matches, min_fraction, min_tokens)
            figures = score(pos, verbatim, renamed_matches, neg, negative, chosen)
            row = {**params, "min_matches": min_matches, "min_fraction": min_fraction, "min_tokens": min_tokens,
                   "index_bytes": size, "fingerprints": int(len(index.hashes)),
                   **{key: figures[key] for key in ("recall_verbatim", "recall_renamed", "false_positive_rate")}}
            results.append(row)
            print(json.dumps(row), flush=True)
        shown_matches, shown_fraction, shown_tokens = args.show.split(",")
        shown = MatchThresholds(int(shown_matches), float(shown_fraction), int(shown_tokens))
        fps = [(f.origin, m.source, m.num_shared, m.num_fingerprints, m.num_tokens, m.num_literals)
               for f, m in zip(neg, negative, strict=True) if shown.accepts(m)]
        missed = [(f.origin, m and (m.num_shared, m.num_fingerprints, m.num_tokens, m.num_literals))
                  for (_, f), m in zip(pos, verbatim, strict=True) if not shown.accepts(m)]
        print(json.dumps({**params, "shown": args.show, "false_positives": fps, "missed": missed}),
              file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"positives": len(pos), "negatives": len(neg), "rows": results}, indent=1))
    return 0


def _index(codes: list, background: list[TokenCodes] | None, k: int, w: int, max_projects: int,
           literal_chars: int | None) -> FingerprintIndex:
    """The index of the cached ``codes``, less every k-gram and long literal of ``background``."""
    dropped = None
    if background is not None:
        prints = [fingerprints_of_codes(c, k, 1, literal_chars) for c in background]
        dropped = np.unique(np.concatenate([np.concatenate([p.hashes, p.literal_hashes]) for p in prints]
                                           or [np.zeros(0, np.uint32)]))
    entries = ((p, path, fingerprints_of_codes(c, k, w, literal_chars)) for p, path, c in codes)
    return FingerprintIndex.from_fingerprints(entries, k, w, max_projects, dropped, literal_chars)


def _ship(codes: list, verdicts: list, k: int, w: int, max_projects: int, use_background: int, literal_chars: int,
          cache: Path) -> int:
    """Write security/data/copyleft.idx (+ .json manifest) from the cached token codes: the same files and
    parameters as `codeloop scan index --projects`, without tokenizing them again."""
    from security.config import DEFAULT_INDEX_PATH
    from security.index_sources import write_manifest

    background = _cached_background(cache) if use_background else None
    index = _index(codes, background, k, w, max_projects, literal_chars or None)
    index.save(DEFAULT_INDEX_PATH)
    by_name = {v.name: v for v in verdicts}
    for project, _, tokens in codes:
        by_name[project.name].num_files += 1
        by_name[project.name].num_lines += int(tokens.lines[-1]) + 1 if len(tokens.lines) else 0
    write_manifest(verdicts, DEFAULT_INDEX_PATH.with_suffix(".json"))
    num_lines = sum(v.num_lines for v in verdicts if v.included)
    size = DEFAULT_INDEX_PATH.stat().st_size
    print(json.dumps({"projects": len(index.projects), "files": len(index.files), "fingerprints": int(len(index.hashes)),
                      "bytes": size, "lines": num_lines, "bytes_per_line": round(size / max(num_lines, 1), 2),
                      "k": k, "w": w, "max_projects_per_hash": max_projects, "background": bool(use_background),
                      "min_literal_chars": literal_chars or None}))
    return 0


def _cached_codes(project, sdist, folder: Path) -> list:
    """Token codes of the project's indexed files, cached on disk (tokenizing is most of the time)."""
    path = folder / f"{project.name}-{project.version}.v2.npz"
    if path.is_file():
        paths, items = _load(path)
        return [(project, rel, tokens) for rel, tokens in zip(paths, items, strict=True)]
    found = [(s.path, token_codes(s.text)) for s in source_files(project, sdist)]
    _save(path, [rel for rel, _ in found], [tokens for _, tokens in found])
    return [(project, rel, tokens) for rel, tokens in found]


def _cached_background(folder: Path) -> list[TokenCodes]:
    """Token codes of every permissive background file (cached like the projects')."""
    path = folder / "background-v3.npz"
    if path.is_file():
        return _load(path)[1]
    found = [token_codes(text) for text in background_texts()]
    _save(path, [""] * len(found), found)
    return found


def _save(path: Path, paths: list[str], items: list[TokenCodes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.concatenate([getattr(t, name) for t in items] or [np.zeros(0)]) for name in _FIELDS}
    np.savez(path, paths=np.frombuffer(json.dumps(paths).encode(), dtype=np.uint8),
             counts=np.array([len(t.codes) for t in items], dtype=np.int64),
             literal_counts=np.array([len(t.literal_hashes) for t in items], dtype=np.int64), **arrays)


def _load(path: Path) -> tuple[list[str], list[TokenCodes]]:
    with np.load(path, allow_pickle=False) as data:
        paths = json.loads(bytes(data["paths"]).decode())
        token_ends, literal_ends = np.cumsum(data["counts"])[:-1], np.cumsum(data["literal_counts"])[:-1]
        split = {name: np.split(data[name], token_ends if name in ("codes", "lines") else literal_ends)
                 for name in _FIELDS}
    return paths, [TokenCodes(*(split[name][i] for name in _FIELDS)) for i in range(len(paths))]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _saved_bytes(index: FingerprintIndex) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tune.idx"
        index.save(path)
        return path.stat().st_size


if __name__ == "__main__":
    sys.exit(main())
