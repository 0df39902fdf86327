"""``FimTask``: one fill-in-the-middle task from a repository, checked by the tests that run its span.

The format is shared by ``codeloop eval fim``, the repository RL task source (reward: the fraction of
``tests`` passing) and the editor's checked suggestions. A task is self-contained: the document the editor
shows is ``prefix + suffix`` with the cursor at the end of ``prefix`` (``line``/``character``, an LSP
position: 0-based line, UTF-16 column); the original file is ``prefix + middle + suffix``.

Invariants: ``splice(task.middle) == original file text``; ``tests`` is non-empty and every test passed on
the original file when run alone (the miner's gold check); a file's tasks are all in one split.
NOTE: for a task made from an accepted editor suggestion (``evals/repo/accepted.py``) the "original file"
is the document the editor held with the accepted text in it, which may differ from the file on disk.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evals.jsonl import write_jsonl_atomic

FORMAT = 1
SPLITS = ("train", "heldout")
DEFAULT_HELDOUT_FRACTION = 0.3
DEFAULT_SEED = 0


@dataclass(frozen=True)
class FimTask:
    task_id: str
    """``<repo>:<path>:<kind>:<1-based line>:<column>``: stable across runs of the miner."""
    repo: str
    """A short name of the repository (folder name or SWE-bench instance id)."""
    source: str
    """How to get the repository and its environment again: a folder path or ``swebench:<instance id>``."""
    path: str
    """File, relative to the repository root."""
    kind: str
    """body | block | line (see evals/repo/spans.py)."""
    function: str
    """Qualified name of the enclosing function."""
    line: int
    character: int
    prefix: str
    middle: str
    """The masked text (the gold completion)."""
    suffix: str
    tests: tuple[str, ...]
    """pytest node ids that execute the span and pass on the original file (at most the miner's
    --max-tests, chosen the same on every run: see ``miner.pick_tests``); run together with the file
    spliced, they decide tests-pass."""
    num_covering_tests: int
    """Every passing test that executes the span (``tests`` may be a subset)."""
    split: str
    first_line: int
    """1-based lines of the masked span in the original file."""
    last_line: int
    repo_key: str = ""
    """The coverage map's key (hash of the repository's files and environment) at mining."""
    commit: str | None = None
    gold_seconds: float = 0.0
    """Time the gold check of ``tests`` took (the cost of one check)."""
    format: int = FORMAT
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def single_line(self) -> bool:
        return self.kind == "line"

    def document(self) -> str:
        """The text the editor holds when asked for the completion."""
        return self.prefix + self.suffix

    def splice(self, completion: str) -> str:
        """The file with ``completion`` typed at the cursor."""
        return self.prefix + completion + self.suffix

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> FimTask:
        if d.get("format", FORMAT) != FORMAT:
            raise ValueError(f"task {d.get('task_id')}: format {d.get('format')}, expected {FORMAT}")
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["tests"] = tuple(known.get("tests") or ())
        return cls(**known)  # type: ignore[arg-type]


def split_of(path: str, seed: int = DEFAULT_SEED, heldout_fraction: float = DEFAULT_HELDOUT_FRACTION) -> str:
    """The split of a file: a hash of (seed, path), so a file's tasks never straddle the split and the
    split does not change when other files or tasks come and go."""
    h = int(hashlib.sha256(f"{seed}:{path}".encode()).hexdigest()[:12], 16) / 16**12
    return "heldout" if h < heldout_fraction else "train"


def write_tasks(path: Path, tasks: Iterable[FimTask]) -> int:
    """Write ``tasks`` as JSONL (atomically: a reader never sees half a file). Returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_jsonl_atomic(path, (t.as_dict() for t in tasks))


def read_tasks(path: Path, split: str | None = None, kinds: Iterable[str] | None = None) -> list[FimTask]:
    """Tasks of a JSONL file, optionally only one split and some kinds; a bad line raises ValueError
    naming it."""
    wanted = set(kinds) if kinds else None
    out = []
    for num, line in enumerate(_lines(path), 1):
        try:
            task = FimTask.from_dict(json.loads(line))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}:{num}: not a task ({exc})") from exc
        if (split is None or task.split == split) and (wanted is None or task.kind in wanted):
            out.append(task)
    return out


def _lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line
