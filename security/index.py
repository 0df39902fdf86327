"""`FingerprintIndex`: winnowed fingerprints of known copyleft code, and matching against it.

Each indexed file belongs to a project (name, version, licence) so that a match can say what
Copilot's code referencing says: project, version, licence and file.

On disk (one compressed numpy archive, format 2) fingerprints are stored in file order, which
is what makes the index small: per file its number of fingerprints (``counts``), the 32-bit
hashes in source order (``hashes``) and the gaps between their lines (``line_gaps``, the first
one absolute; small numbers that compress to a few bits). Hashes of long string literals sit among
them, with their lines (``fingerprint.py``; a 32-bit value is taken for one kind or the other only by
accident). A JSON ``header`` holds the parameters (``min_literal_chars`` absent in an index built
before literal fingerprints: it has none), projects and files. Loading sorts the hashes once for binary search.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .config import DEFAULT_K, DEFAULT_MAX_PROJECTS_PER_HASH, DEFAULT_MIN_LITERAL_CHARS, DEFAULT_W
from .fingerprint import Fingerprints, fingerprints

FORMAT_VERSION = 2
MAX_LINE = np.iinfo(np.uint16).max


@dataclass(frozen=True)
class Project:
    """An indexed project: PyPI name, version and SPDX licence."""

    name: str
    version: str
    licence: str


@dataclass(frozen=True)
class SourceFile:
    """One file to index: its project, path inside the sdist, and text."""

    project: Project
    path: str
    text: str


@dataclass(frozen=True)
class IndexMatch:
    """The indexed file sharing most fingerprints with a snippet.

    ``num_shared`` of the snippet's ``num_fingerprints`` (k-gram and long-literal ones) are in
    ``path``, ``num_literals`` of them literal ones.
    ``start_line``/``end_line`` are 0-based lines of the snippet covered by shared fingerprints;
    ``source_line`` is the 0-based line in ``path`` of the first shared one; ``num_tokens``
    counts the snippet's normalised tokens inside at least one shared k-gram (how much code the
    match covers: a docstring is one token, so two shared k-grams of a mostly-docstring function
    cover about ``k`` tokens, a copied function of ten lines of code many more).
    """

    project: Project
    path: str
    source_line: int
    num_shared: int
    num_fingerprints: int
    start_line: int
    end_line: int
    num_tokens: int
    num_literals: int

    @property
    def fraction(self) -> float:
        return self.num_shared / max(self.num_fingerprints, 1)

    @property
    def source(self) -> str:
        """``name-version/path``: where the matching code is, in one string."""
        return f"{self.project.name}-{self.project.version}/{self.path}"


@dataclass(frozen=True)
class FingerprintIndex:
    """Fingerprints of indexed files, sorted for lookup.

    Invariants: ``hashes`` is sorted ascending; ``file_ids`` and ``lines`` are aligned with it;
    every file id indexes ``files`` and every ``files[i][0]`` indexes ``projects``.
    """

    k: int
    w: int
    min_literal_chars: int | None  # None: an index without literal fingerprints (built before them)
    projects: tuple[Project, ...]
    files: tuple[tuple[int, str], ...]
    hashes: np.ndarray  # [n] uint32
    file_ids: np.ndarray  # [n] uint32
    lines: np.ndarray  # [n] uint32

    @classmethod
    def build(cls, sources: Iterable[SourceFile], k: int = DEFAULT_K, w: int = DEFAULT_W,
              max_projects_per_hash: int = DEFAULT_MAX_PROJECTS_PER_HASH, background: Iterable[str] = (),
              min_literal_chars: int | None = DEFAULT_MIN_LITERAL_CHARS) -> FingerprintIndex:
        """Index ``sources``. A hash found in more than ``max_projects_per_hash`` projects is
        common code, not evidence of copying (MOSS drops such hashes too); so is any k-gram or long
        literal of a ``background`` text (permissive code that copyleft projects may contain)."""
        entries = ((s.project, s.path, fingerprints(s.text, k, w, min_literal_chars)) for s in sources)
        return cls.from_fingerprints(entries, k, w, max_projects_per_hash,
                                     _background_hashes(background, k, min_literal_chars), min_literal_chars)

    @classmethod
    def from_fingerprints(cls, entries: Iterable[tuple[Project, str, Fingerprints]], k: int, w: int,
                          max_projects_per_hash: int = DEFAULT_MAX_PROJECTS_PER_HASH, dropped: np.ndarray | None = None,
                          min_literal_chars: int | None = DEFAULT_MIN_LITERAL_CHARS) -> FingerprintIndex:
        """Index already computed ``(project, path, fingerprints)`` (their k-gram and literal hashes,
        computed with ``min_literal_chars``); hashes in ``dropped`` are left out."""
        projects: dict[Project, int] = {}
        files, hashes, lines = [], [], []
        for project, path, prints in entries:
            both = np.concatenate([prints.hashes, prints.literal_hashes])
            both_lines = np.concatenate([prints.start_lines, prints.literal_lines])
            _, first = np.unique(both, return_index=True)  # one entry per hash and file
            keep = np.sort(first)
            files.append((projects.setdefault(project, len(projects)), path))
            hashes.append(both[keep])
            lines.append(np.minimum(both_lines[keep], MAX_LINE).astype(np.uint32))
        counts = np.array([len(h) for h in hashes], dtype=np.int64)
        flat = np.concatenate(hashes) if hashes else np.zeros(0, np.uint32)
        file_ids = np.repeat(np.arange(len(files), dtype=np.uint32), counts)
        project_of_file = np.array([p for p, _ in files], dtype=np.uint32)
        drop = _common(flat, project_of_file[file_ids] if len(files) else file_ids, max_projects_per_hash)
        if dropped is not None and len(dropped):
            drop |= np.isin(flat, dropped)
        kept = ~drop
        all_lines = np.concatenate(lines) if lines else np.zeros(0, np.uint32)
        return cls._sorted(k, w, min_literal_chars, tuple(projects), tuple(files), flat[kept], file_ids[kept],
                           all_lines[kept])

    @classmethod
    def _sorted(cls, k, w, min_literal_chars, projects, files, hashes, file_ids, lines) -> FingerprintIndex:
        order = np.argsort(hashes, kind="stable")
        return cls(k, w, min_literal_chars, projects, files, hashes[order], file_ids[order].astype(np.uint32),
                   lines[order].astype(np.uint32))

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (format 2, see the module docstring)."""
        order = np.lexsort((self.lines, self.file_ids))  # file order, then line order
        file_ids, lines = self.file_ids[order], self.lines[order].astype(np.int64)
        counts = np.bincount(file_ids, minlength=len(self.files)).astype(np.uint32)
        gaps = np.diff(lines, prepend=0)
        starts = np.cumsum(counts)[:-1][counts[1:] > 0] if len(counts) else np.zeros(0, np.int64)
        gaps[starts.astype(np.int64)] = lines[starts.astype(np.int64)]  # each file's first line is absolute
        header = {"version": FORMAT_VERSION, "k": self.k, "w": self.w, "min_literal_chars": self.min_literal_chars,
                  "projects": [[p.name, p.version, p.licence] for p in self.projects], "files": self.files}
        with open(path, "wb") as out:
            np.savez_compressed(out, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                                counts=counts, hashes=self.hashes[order], line_gaps=gaps.astype(np.uint16))

    @classmethod
    def load(cls, path: Path) -> FingerprintIndex:
        """Read an index written by ``save``; raises ``ValueError`` on a file that is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                if header.get("version") != FORMAT_VERSION:
                    raise ValueError(f"{path}: index format {header.get('version')}, expected {FORMAT_VERSION}")
                counts, hashes, gaps = data["counts"], data["hashes"], data["line_gaps"].astype(np.int64)
        except (OSError, KeyError, json.JSONDecodeError, EOFError) as exc:
            raise ValueError(f"{path}: not a fingerprint index ({exc})") from exc
        projects = tuple(Project(*map(str, p)) for p in header["projects"])
        files = tuple((int(p), str(f)) for p, f in header["files"])
        file_ids = np.repeat(np.arange(len(files), dtype=np.uint32), counts.astype(np.int64))
        running = np.cumsum(gaps)
        ends = np.cumsum(counts.astype(np.int64))
        previous_end = ends[:-1] - 1
        before = np.where(previous_end >= 0, running[np.maximum(previous_end, 0)] if len(running) else 0, 0)
        lines = running - np.repeat(np.concatenate([[0], before]).astype(np.int64), counts.astype(np.int64))
        min_literal_chars = header.get("min_literal_chars")
        return cls._sorted(int(header["k"]), int(header["w"]), None if min_literal_chars is None else int(min_literal_chars),
                           projects, files, hashes, file_ids, lines)

    def project_of(self, file_id: int) -> Project:
        return self.projects[self.files[file_id][0]]

    def best_match(self, source: str) -> IndexMatch | None:
        """The file sharing most fingerprints (k-gram and literal ones) with ``source``, or ``None``
        when none shares one."""
        prints = fingerprints(source, self.k, self.w, self.min_literal_chars)
        literal_hashes, first_of = np.unique(prints.literal_hashes, return_index=True)
        queries = np.concatenate([prints.hashes, literal_hashes])  # k-gram ones first, then literal ones
        starts = np.concatenate([prints.start_lines, prints.literal_lines[first_of]])
        ends = np.concatenate([prints.end_lines, prints.literal_lines[first_of]])
        if not len(queries) or not len(self.hashes):
            return None
        lo = np.searchsorted(self.hashes, queries, side="left")
        hi = np.searchsorted(self.hashes, queries, side="right")
        hits = [(q, i) for q in np.nonzero(hi > lo)[0] for i in range(lo[q], hi[q])]
        if not hits:
            return None
        per_file: dict[int, set[int]] = {}
        for q, i in hits:
            per_file.setdefault(int(self.file_ids[i]), set()).add(int(q))
        file_id, shared = max(per_file.items(), key=lambda item: (len(item[1]), -item[0]))
        kgrams = sorted(q for q in shared if q < len(prints))
        first = min(shared, key=lambda q: (starts[q], q))
        source_lines = [int(self.lines[i]) for q, i in hits if q == first and self.file_ids[i] == file_id]
        return IndexMatch(self.project_of(file_id), self.files[file_id][1], min(source_lines), len(shared),
                          len(queries), int(starts[first]), int(max(ends[q] for q in shared)),
                          _covered_tokens(prints.start_tokens[kgrams], self.k), len(shared) - len(kgrams))


def _covered_tokens(starts: np.ndarray, k: int) -> int:
    """Number of token positions inside at least one k-gram starting at ``starts`` (ascending)."""
    if not len(starts):
        return 0
    ends = np.minimum(starts[1:], starts[:-1] + k)  # each k-gram counts up to where the next one starts
    return int(np.sum(ends - starts[:-1]) + k)


def _common(hashes: np.ndarray, owners: np.ndarray, max_owners: int) -> np.ndarray:
    """Mask of hashes found under more than ``max_owners`` distinct owners."""
    if not len(hashes):
        return np.zeros(0, dtype=bool)
    pairs = np.unique((hashes.astype(np.uint64) << np.uint64(32)) | owners.astype(np.uint64))
    values, counts = np.unique((pairs >> np.uint64(32)).astype(np.uint32), return_counts=True)
    return np.isin(hashes, values[counts > max_owners])


def _background_hashes(texts: Iterable[str], k: int, min_literal_chars: int | None) -> np.ndarray:
    """Every k-gram hash (not only the winnowed ones: the index's picks differ) and long-literal hash of ``texts``."""
    found = [np.concatenate([p.hashes, p.literal_hashes]) for p in (fingerprints(t, k, 1, min_literal_chars) for t in texts)]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint32)


@lru_cache(maxsize=4)
def load_cached(path: str, mtime_ns: int) -> FingerprintIndex:
    """``FingerprintIndex.load`` memoised on path and modification time (the scanner calls it per scan)."""
    return FingerprintIndex.load(Path(path))
