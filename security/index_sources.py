"""`IndexSources`: which projects go into the copyleft index and the files they contribute.

The candidate list (``data/copyleft_candidates.tsv``: PyPI name, pinned version, rank among
PyPI's 15,000 most downloaded projects) names packages worth checking; membership is decided
only by ``project_licence`` on the downloaded sdist. Inside an included project a file whose
header declares only a permissive licence (MIT, BSD, Apache, ...) is left out: it is not
copyleft code even though a copyleft project ships it.
"""

from __future__ import annotations

import csv
import fnmatch
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import CANDIDATES_PATH
from .index import FingerprintIndex, Project, SourceFile
from .licence_text import licence_text_findings
from .permissive_corpus import background_texts
from .project_licence import ProjectLicence, family, project_licence
from .sdist import Sdist, fetch, python_files

_HEADER_CHARS = 3_000


@dataclass(frozen=True)
class Candidate:
    """One row of the candidate list."""

    name: str
    version: str
    rank: int | None

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass
class Verdict:
    """What happened to one candidate: included (with its licence) or left out, and why."""

    name: str
    version: str
    rank: int | None
    licence: str | None
    included: bool
    reason: str = ""
    evidence: list[str] = field(default_factory=list)
    num_files: int = 0
    num_lines: int = 0


def read_candidates(path: Path = CANDIDATES_PATH) -> list[Candidate]:
    """Rows of a candidate list (tab-separated ``name``, ``version``, ``rank``; ``#`` comments)."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for row in csv.reader((line for line in handle if line.strip() and not line.startswith("#")), delimiter="\t"):
            rank = row[2].strip() if len(row) > 2 else ""
            rows.append(Candidate(row[0].strip(), row[1].strip(), int(rank) if rank else None))
    return rows


def included_projects(candidates: list[Candidate], cache: Path, progress: Callable[[str], None] = lambda _: None,
                      download: bool = True) -> tuple[list[tuple[Project, Sdist]], list[Verdict]]:
    """Download each candidate (unless only the cache may be used), read its licence, keep the copyleft ones."""
    kept, verdicts = [], []
    for candidate in candidates:
        progress(candidate.requirement)
        try:
            sdist = fetch(candidate.requirement, cache, download=download)
        except (RuntimeError, OSError, ValueError) as exc:
            verdicts.append(Verdict(candidate.name, candidate.version, candidate.rank, None, False, str(exc)))
            continue
        licence = project_licence(sdist.root)
        verdicts.append(_verdict(candidate, licence))
        if licence.copyleft and next(python_files(sdist), None) is None:
            verdicts[-1].included, verdicts[-1].reason = False, "no Python source in the sdist"
        elif licence.copyleft and licence.spdx:
            kept.append((Project(candidate.name, candidate.version, licence.spdx), sdist))
    return kept, verdicts


def source_files(project: Project, sdist: Sdist) -> Iterator[SourceFile]:
    """The project's Python files, less those whose header declares only permissive licences."""
    for path, text in python_files(sdist):
        if not _permissive_only(text[:_HEADER_CHARS]):
            yield SourceFile(project, path, text)


def tree_files(root: Path, project: Project, excludes: Iterable[str] = ()) -> Iterator[SourceFile]:
    """Source files of one unpacked tree (``codeloop scan index DIR``), less ``excludes`` globs."""
    patterns = list(excludes)
    for path, text in python_files(Sdist(project.name, project.version, root)):
        if not any(fnmatch.fnmatch(path, p) for p in patterns):
            yield SourceFile(project, path, text)


def build_shipped_index(candidates_path: Path, cache: Path, out: Path, *, k: int, w: int,
                        max_projects_per_hash: int, console=None) -> dict:
    """Download the candidates, keep the copyleft ones, index them into ``out`` and write the
    manifest (``out`` with ``.json``). Returns a summary."""
    from rich.progress import Progress

    candidates = read_candidates(candidates_path)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("sdists", total=len(candidates))
        kept, verdicts = included_projects(candidates, cache, lambda name: bar.update(task, advance=1, description=name))
        files = bar.add_task("fingerprinting", total=len(kept))
        by_name = {v.name: v for v in verdicts}

        def sources() -> Iterator[SourceFile]:
            for project, sdist in kept:
                bar.update(files, advance=1, description=project.name)
                verdict = by_name[project.name]
                for source in source_files(project, sdist):
                    verdict.num_files += 1
                    verdict.num_lines += source.text.count("\n")
                    yield source

        # permissive code the copyleft sdists carry (stdlib copies, backports) is not evidence of copying
        index = FingerprintIndex.build(sources(), k, w, max_projects_per_hash, background=background_texts())
    out.parent.mkdir(parents=True, exist_ok=True)
    index.save(out)
    write_manifest(verdicts, out.with_suffix(".json"))
    lines = sum(v.num_lines for v in verdicts if v.included)
    return {"out": str(out), "projects": len(index.projects), "files": len(index.files),
            "fingerprints": int(len(index.hashes)), "bytes": out.stat().st_size, "lines": lines,
            "bytes_per_line": round(out.stat().st_size / max(lines, 1), 2)}


def write_manifest(verdicts: list[Verdict], path: Path) -> None:
    """Write the verdicts as JSON next to the index (what is in it and what was left out, why)."""
    path.write_text(json.dumps([asdict(v) for v in verdicts], indent=1) + "\n", encoding="utf-8")


def _verdict(candidate: Candidate, licence: ProjectLicence) -> Verdict:
    return Verdict(candidate.name, candidate.version, candidate.rank, licence.spdx, licence.copyleft,
                   licence.reason, list(licence.evidence))


def _permissive_only(header: str) -> bool:
    ids = {f.rule_id.removeprefix("licence.") for f in licence_text_findings(header)}
    return bool(ids) and not any(family(i) for i in ids)
