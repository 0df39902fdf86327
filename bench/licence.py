"""The licence-match benchmark: recall on copied functions, false positives on permissive code.

Projects (and standard-library modules, and permissive packages) are split once by name
(``corpus.split_of``): fingerprint parameters and thresholds are chosen on the ``tune`` split
(``scripts/tune_scan_index.py``) and judged on the ``measure`` split, never the other way.
Positives are functions of 10 to 80 lines from indexed files of indexed projects, as they are
(``verbatim``) and with every identifier renamed (``renamed``); negatives are functions of the
same size from installed permissively licensed packages of the split (never indexed, never in the
background kept out of the index) and, reported apart, from standard-library modules (whose k-grams
the index leaves out by construction: see security/permissive_corpus.py). Numbers come out as a dict; nothing here asserts a threshold.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from security.config import MatchThresholds
from security.corpus import Function, functions_in_text, renamed, split_of
from security.index import FingerprintIndex, IndexMatch, Project
from security.index_sources import source_files
from security.permissive_corpus import permissive_sources
from security.sdist import Sdist

MIN_LINES, MAX_LINES = 10, 80
MAX_FILES_PER_PACKAGE = 40
"""Functions of a project or package are drawn from this many of its files (torch alone has thousands)."""


def positives(projects: list[tuple[Project, Sdist]], split: str, per_project: int, seed: int) -> list[tuple[str, Function]]:
    """Up to ``per_project`` functions from each project of ``split`` (drawn from at most
    ``MAX_FILES_PER_PACKAGE`` of its indexed files), tagged with the project's name."""
    chosen = []
    for project, sdist in projects:
        if split_of(project.name) != split:
            continue
        sources = _sample(list(source_files(project, sdist)), MAX_FILES_PER_PACKAGE, seed)
        found = [f for source in sources
                 for f in functions_in_text(f"{sdist.label}/{source.path}", source.text, MIN_LINES, MAX_LINES)]
        chosen += [(project.name, f) for f in _sample(found, per_project, seed)]
    return chosen


def negatives(split: str, per_package: int, seed: int, site_packages: Path | None = None,
              stdlib: bool = False) -> list[Function]:
    """Functions from the permissive packages of ``split`` (or its standard-library modules, with
    ``stdlib``): ``per_package`` of each, drawn from at most ``MAX_FILES_PER_PACKAGE`` of its files."""
    chosen = [paths for name, paths in permissive_sources(split, site_packages) if name.startswith("stdlib:") == stdlib]
    return [f for paths in chosen for f in _sample(_functions_of(_sample(paths, MAX_FILES_PER_PACKAGE, seed)),
                                                   per_package, seed)]


def evaluate(index: FingerprintIndex, pos: list[tuple[str, Function]], neg: list[Function],
             thresholds: MatchThresholds) -> dict:
    """Recall (verbatim, renamed; any indexed project and the right one) and false-positive rate."""
    verbatim = [index.best_match(f.source) for _, f in pos]
    renamed_matches = [index.best_match(renamed(f.source)) for _, f in pos]
    negative = [index.best_match(f.source) for f in neg]
    return score(pos, verbatim, renamed_matches, neg, negative, thresholds)


def score(pos: list[tuple[str, Function]], verbatim: list, renamed_matches: list, neg: list[Function],
          negative: list, thresholds: MatchThresholds) -> dict:
    """The benchmark's figures from already computed best matches (tuning re-scores them cheaply)."""
    def hits(matches: Iterable[IndexMatch | None]) -> list[bool]:
        return [thresholds.accepts(m) for m in matches]

    right = [thresholds.accepts(m) and m.project.name == name for (name, _), m in zip(pos, verbatim, strict=True)]
    false = [f.origin for f, m in zip(neg, negative, strict=True) if thresholds.accepts(m)]
    return {
        "recall_verbatim": _rate(hits(verbatim)), "recall_renamed": _rate(hits(renamed_matches)),
        "recall_verbatim_right_project": _rate(right),
        "false_positive_rate": round(len(false) / max(len(neg), 1), 4),
        "num_positives": len(pos), "num_negatives": len(neg), "false_positives": false[:50],
        "missed": [f.origin for (_, f), ok in zip(pos, hits(verbatim), strict=True) if not ok][:50],
    }


def run(cache: Path, per_project: int, per_package: int, seed: int, index_path: Path | None = None) -> dict:
    """The benchmark on the ``measure`` split against the shipped index (or ``index_path``), with the
    thresholds the scanner uses; the indexed projects' sdists are read from ``cache`` (where
    scripts/build_scan_index.sh left them; nothing is downloaded here)."""
    from security.config import DEFAULT_INDEX_PATH, ScanConfig
    from security.index_sources import included_projects, read_candidates

    path = index_path or DEFAULT_INDEX_PATH
    index = FingerprintIndex.load(path)
    thresholds = ScanConfig().index_thresholds
    projects, _ = included_projects(read_candidates(), cache, download=False)
    pos = positives(projects, "measure", per_project, seed)
    packages = evaluate(index, pos, negatives("measure", per_package, seed), thresholds)
    stdlib_neg = negatives("measure", per_package, seed, stdlib=True)
    stdlib_fp = [f.origin for f in stdlib_neg if thresholds.accepts(index.best_match(f.source))]
    measured = {project.name for project, _ in projects if split_of(project.name) == "measure"}
    return {**packages, "index": str(path), "index_bytes": path.stat().st_size, "num_projects": len(index.projects),
            "measured_projects": sorted(measured), "k": index.k, "w": index.w,
            "min_matches": thresholds.min_matches, "min_fraction": thresholds.min_fraction,
            "min_tokens": thresholds.min_tokens,
            "stdlib_false_positive_rate": round(len(stdlib_fp) / max(len(stdlib_neg), 1), 4),
            "stdlib_negatives": len(stdlib_neg), "stdlib_false_positives": stdlib_fp[:50]}


def _functions_of(paths: list[Path]) -> list[Function]:
    found = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found += functions_in_text(str(path), text, MIN_LINES, MAX_LINES)
    return found


def _sample(items: list, n: int, seed: int) -> list:
    return random.Random(seed).sample(items, min(n, len(items)))


def _rate(flags: list[bool]) -> float:
    return round(sum(flags) / max(len(flags), 1), 4)
