"""`FingerprintIndex`: winnowed fingerprints of known (copyleft) code, and matching against it.

Stored as one compressed numpy archive: ``hashes`` sorted (uint64), and for each the source file
number (``file_ids``, uint32) and 0-based line (``lines``, uint32), plus a JSON header with the
fingerprint parameters and the ``(path, SPDX licence)`` of each file.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .fingerprint import DEFAULT_K, DEFAULT_W, fingerprints

FORMAT_VERSION = 1
MAX_FILE_BYTES = 2_000_000


@dataclass(frozen=True)
class IndexMatch:
    """The indexed file sharing most fingerprints with a snippet.

    ``start_line``/``end_line`` are 0-based lines of the snippet covered by shared k-grams;
    ``source_line`` is the 0-based line in ``source`` of the first shared k-gram.
    """

    source: str
    licence: str
    source_line: int
    num_shared: int
    num_fingerprints: int
    start_line: int
    end_line: int

    @property
    def fraction(self) -> float:
        return self.num_shared / max(self.num_fingerprints, 1)


@dataclass(frozen=True)
class FingerprintIndex:
    """Sorted fingerprints of indexed files. Invariant: ``hashes`` is sorted ascending and
    ``file_ids``/``lines`` are aligned with it; every file id indexes ``files``."""

    k: int
    w: int
    files: tuple[tuple[str, str], ...]
    hashes: np.ndarray
    file_ids: np.ndarray
    lines: np.ndarray

    @classmethod
    def build(cls, sources: Iterable[tuple[str, str, str]], k: int = DEFAULT_K, w: int = DEFAULT_W,
              max_files_per_hash: int = 4) -> FingerprintIndex:
        """Index ``(path, licence, text)`` triples. Hashes found in more than ``max_files_per_hash``
        files are dropped as boilerplate (MOSS does the same with common code)."""
        files, parts = [], []
        for path, licence, text in sources:
            prints = fingerprints(text, k, w)
            parts.append((np.full(len(prints), len(files), dtype=np.uint32), prints))
            files.append((path, licence))
        if not parts:
            return cls(k, w, (), np.zeros(0, np.uint64), np.zeros(0, np.uint32), np.zeros(0, np.uint32))
        hashes = np.concatenate([p.hashes for _, p in parts])
        file_ids = np.concatenate([ids for ids, _ in parts])
        lines = np.concatenate([p.start_lines for _, p in parts]).astype(np.uint32)
        keep = _not_boilerplate(hashes, file_ids, max_files_per_hash)
        order = np.argsort(hashes[keep], kind="stable")
        return cls(k, w, tuple(files), hashes[keep][order], file_ids[keep][order], lines[keep][order])

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (a compressed numpy archive, whatever the suffix)."""
        header = json.dumps({"version": FORMAT_VERSION, "k": self.k, "w": self.w, "files": self.files})
        with open(path, "wb") as out:
            np.savez_compressed(out, header=np.frombuffer(header.encode(), dtype=np.uint8),
                                hashes=self.hashes, file_ids=self.file_ids, lines=self.lines)

    @classmethod
    def load(cls, path: Path) -> FingerprintIndex:
        """Read an index written by ``save``; raises ``ValueError`` on a file that is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                arrays = data["hashes"], data["file_ids"], data["lines"]
        except (OSError, KeyError, json.JSONDecodeError, EOFError) as exc:
            raise ValueError(f"{path}: not a fingerprint index ({exc})") from exc
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: index format {header.get('version')}, expected {FORMAT_VERSION}")
        files = tuple((str(p), str(lic)) for p, lic in header["files"])
        return cls(int(header["k"]), int(header["w"]), files, *arrays)

    def best_match(self, source: str) -> IndexMatch | None:
        """The file sharing most fingerprints with ``source``, or ``None`` when none shares one."""
        prints = fingerprints(source, self.k, self.w)
        if not len(prints) or not len(self.hashes):
            return None
        lo = np.searchsorted(self.hashes, prints.hashes, side="left")
        hi = np.searchsorted(self.hashes, prints.hashes, side="right")
        hits = [(q, i) for q in np.nonzero(hi > lo)[0] for i in range(lo[q], hi[q])]
        if not hits:
            return None
        per_file: dict[int, set[int]] = {}
        for q, i in hits:
            per_file.setdefault(int(self.file_ids[i]), set()).add(int(q))
        file_id, shared = max(per_file.items(), key=lambda item: (len(item[1]), -item[0]))
        first = min(shared)
        source_lines = [int(self.lines[i]) for q, i in hits if q == first and self.file_ids[i] == file_id]
        path, licence = self.files[file_id]
        return IndexMatch(path, licence, min(source_lines), len(shared), len(prints),
                          int(prints.start_lines[first]), int(prints.end_lines[max(shared)]))


def _not_boilerplate(hashes: np.ndarray, file_ids: np.ndarray, max_files: int) -> np.ndarray:
    pairs = np.unique(np.stack([hashes, file_ids.astype(np.uint64)], axis=1), axis=0)
    values, counts = np.unique(pairs[:, 0], return_counts=True)
    common = values[counts > max_files]
    return ~np.isin(hashes, common)


def iter_sources(root: Path, licence: str, prefix: str, excludes: Iterable[str] = ()) -> Iterable[tuple[str, str, str]]:
    """``(prefix/relative path, licence, text)`` for each ``*.py`` file under ``root`` not excluded."""
    patterns = list(excludes)
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(rel, p) for p in patterns) or not path.is_file():
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        yield f"{prefix}/{rel}", licence, path.read_text(encoding="utf-8", errors="replace")


@lru_cache(maxsize=4)
def load_cached(path: str, mtime_ns: int) -> FingerprintIndex:
    """``FingerprintIndex.load`` memoised on path and modification time (the scanner calls it per scan)."""
    return FingerprintIndex.load(Path(path))
