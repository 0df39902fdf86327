"""Choose the licence index's fingerprint parameters on the TUNING split only.

For each (k, w, max projects per hash) it builds the index of every included project (from the
sdists already in the cache: run scripts/build_scan_index.sh first), matches the tuning split's
copied functions (verbatim and renamed) and permissive functions, and reports recall / false
positives for a grid of thresholds next to the saved index size. The measuring split is never
looked at here.

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

from bench.licence import Thresholds, negatives, positives, score
from security.corpus import renamed
from security.fingerprint import fingerprints_of_codes, token_codes
from security.index import FingerprintIndex
from security.index_sources import included_projects, read_candidates, source_files
from security.permissive_corpus import background_texts


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
    parser.add_argument("--ship", metavar="K,W,MAX_PROJECTS,BACKGROUND",
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
    background = [_cached_background(args.cache / "codes")]
    results = []
    grid = itertools.product(_ints(args.k), _ints(args.w), _ints(args.max_projects), _ints(args.background))
    for k, w, max_projects, use_background in grid:
        dropped = _all_kgrams(background[0], k) if use_background else None
        entries = ((p, path, fingerprints_of_codes(c, lines, k, w)) for p, path, (c, lines) in codes)
        index = FingerprintIndex.from_fingerprints(entries, k, w, max_projects, dropped)
        size = _saved_bytes(index)
        verbatim = [index.best_match(f.source) for _, f in pos]
        renamed_matches = [index.best_match(renamed(f.source)) for _, f in pos]
        negative = [index.best_match(f.source) for f in neg]
        for min_matches, min_fraction in itertools.product((2, 3, 4), (0.2, 0.3, 0.4, 0.5)):
            figures = score(pos, verbatim, renamed_matches, neg, negative, Thresholds(min_matches, min_fraction))
            row = {"k": k, "w": w, "max_projects": max_projects, "background": use_background,
                   "min_matches": min_matches, "min_fraction": min_fraction, "index_bytes": size,
                   "fingerprints": int(len(index.hashes)),
                   **{key: figures[key] for key in ("recall_verbatim", "recall_renamed", "false_positive_rate")}}
            results.append(row)
            print(json.dumps(row), flush=True)
            if (min_matches, min_fraction) == (2, 0.3):
                fps = [(f.origin, m.source, m.num_shared, m.num_fingerprints) for f, m in zip(neg, negative, strict=True)
                       if Thresholds(2, 0.3).accepts(m)]
                print(json.dumps({"false_positives": fps, "missed": figures["missed"][:30]}), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"positives": len(pos), "negatives": len(neg), "rows": results}, indent=1))
    return 0


def _ship(codes: list, verdicts: list, k: int, w: int, max_projects: int, use_background: int, cache: Path) -> int:
    """Write security/data/copyleft.idx (+ .json manifest) from the cached token codes: the same files and
    parameters as `codeloop scan index --projects`, without tokenizing them again."""
    from security.config import DEFAULT_INDEX_PATH
    from security.index_sources import write_manifest

    dropped = _all_kgrams(_cached_background(cache), k) if use_background else None
    entries = ((p, path, fingerprints_of_codes(c, lines, k, w)) for p, path, (c, lines) in codes)
    index = FingerprintIndex.from_fingerprints(entries, k, w, max_projects, dropped)
    index.save(DEFAULT_INDEX_PATH)
    by_name = {v.name: v for v in verdicts}
    for project, _, (_codes, lines) in codes:
        by_name[project.name].num_files += 1
        by_name[project.name].num_lines += int(lines[-1]) + 1 if len(lines) else 0
    write_manifest(verdicts, DEFAULT_INDEX_PATH.with_suffix(".json"))
    num_lines = sum(v.num_lines for v in verdicts if v.included)
    size = DEFAULT_INDEX_PATH.stat().st_size
    print(json.dumps({"projects": len(index.projects), "files": len(index.files), "fingerprints": int(len(index.hashes)),
                      "bytes": size, "lines": num_lines, "bytes_per_line": round(size / max(num_lines, 1), 2),
                      "k": k, "w": w, "max_projects_per_hash": max_projects, "background": bool(use_background)}))
    return 0


def _cached_codes(project, sdist, folder: Path) -> list:
    """Token codes of the project's indexed files, cached on disk (tokenizing is most of the time)."""
    path = folder / f"{project.name}-{project.version}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            paths = json.loads(bytes(data["paths"]).decode())
            ends = np.cumsum(data["counts"])
            return [(project, rel, (codes, lines)) for rel, codes, lines in
                    zip(paths, np.split(data["codes"], ends[:-1]), np.split(data["lines"], ends[:-1]), strict=True)]
    items = [(project, s.path, token_codes(s.text)) for s in source_files(project, sdist)]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, paths=np.frombuffer(json.dumps([rel for _, rel, _ in items]).encode(), dtype=np.uint8),
             counts=np.array([len(c) for _, _, (c, _) in items], dtype=np.int64),
             codes=np.concatenate([c for _, _, (c, _) in items] or [np.zeros(0, np.uint64)]),
             lines=np.concatenate([ln for _, _, (_, ln) in items] or [np.zeros(0, np.int64)]))
    return items


def _cached_background(folder: Path) -> list[np.ndarray]:
    """Token codes of every permissive background file (cached like the projects')."""
    path = folder / "background-v2.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return np.split(data["codes"], np.cumsum(data["counts"])[:-1])
    found = [token_codes(text)[0] for text in background_texts()]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, counts=np.array([len(c) for c in found], dtype=np.int64),
             codes=np.concatenate(found or [np.zeros(0, np.uint64)]))
    return found


def _all_kgrams(background: list[np.ndarray], k: int) -> np.ndarray:
    lines = [np.zeros(len(c), dtype=np.int64) for c in background]
    return np.unique(np.concatenate([fingerprints_of_codes(c, ln, k, 1).hashes for c, ln in zip(background, lines, strict=True)]
                                    or [np.zeros(0, np.uint32)]))


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _saved_bytes(index: FingerprintIndex) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tune.idx"
        index.save(path)
        return path.stat().st_size


if __name__ == "__main__":
    sys.exit(main())
