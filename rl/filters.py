"""Training-data hygiene: near-duplicate removal and the scanner filter (decontamination: rl/decontamination.py).

Each filter returns the kept items and a report of what was dropped and why, so a run can say exactly how
its data was cleaned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from datasketch import MinHash, MinHashLSH

T = TypeVar("T")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S")


def words(text: str) -> list[str]:
    """Lower-cased identifier / number / symbol tokens: whitespace and layout do not matter."""
    return [w.lower() for w in WORD.findall(text)]


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


@dataclass
class FilterReport:
    kept: int = 0
    dropped: dict[str, list[str]] = field(default_factory=dict)
    """reason → ids of dropped items."""

    def drop(self, reason: str, item_id: str) -> None:
        self.dropped.setdefault(reason, []).append(item_id)

    def as_dict(self) -> dict:
        return {"kept": self.kept, "dropped": {k: len(v) for k, v in self.dropped.items()},
                "dropped_ids": self.dropped}


def _minhash(text: str, num_perm: int, shingle: int) -> MinHash:
    mh = MinHash(num_perm=num_perm, seed=1)
    toks = words(text)
    for gram in ngrams(toks, shingle) or {tuple(toks)}:
        mh.update(" ".join(gram).encode())
    return mh


def dedup(items: Iterable[T], text: Callable[[T], str], ident: Callable[[T], str], *,
          threshold: float = 0.8, num_perm: int = 128, shingle: int = 5,
          report: FilterReport | None = None) -> list[T]:
    """Keep the first of every group of near-duplicates (MinHash LSH, Jaccard ≥ ``threshold``)."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept = []
    for item in items:
        key = ident(item)
        mh = _minhash(text(item), num_perm, shingle)
        if lsh.query(mh):
            if report is not None:
                report.drop("near_duplicate", key)
            continue
        lsh.insert(key, mh)
        kept.append(item)
    return kept


def scanner_filter(items: Iterable[T], text: Callable[[T], str], ident: Callable[[T], str],
                   report: FilterReport | None = None) -> list[T]:
    """Drop items with secrets, copyleft matches or high-severity risky code (the editor's scanner)."""
    from security import scan

    kept = []
    for item in items:
        bad = [f for f in scan(text(item)) if f.kind.value in ("secret", "licence")
               or f.severity.value == "high"]
        if bad:
            if report is not None:
                report.drop(f"scan:{bad[0].rule_id}", ident(item))
        else:
            kept.append(item)
    return kept
