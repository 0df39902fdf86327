"""Decontamination: no training task may be an evaluation task, by id, by shared text, or by near-duplicate.

Every task source (MBPP train, synthetic tasks, repository tasks, accepted suggestions, ...) goes through
``decontaminate(tasks, source)`` before it can be trained on; the returned ``DecontaminationReport`` says
what was removed, why, and which evaluation item it matched. The index covers every evaluation set the
project reports or selects on (``EVAL_SETS``: HumanEval(+), MBPP test / validation / prompt, MBPP+,
BigCodeBench complete + instruct, SWE-bench Lite statements when its folder is given).

A task is removed when (checked in this order, the first reason is recorded):
- ``id``: its task id is an evaluation task id (e.g. MBPP train ``Mbpp/602`` is also an MBPP+ task);
- ``ngram``: it shares a ``NGRAM``-word sequence with an evaluation item's prompt + solution (words are
  lower-cased identifiers; numbers and punctuation are dropped, so layout and test data do not match);
- ``minhash``: the word 3-shingles of its problem text have an estimated Jaccard similarity of at least
  ``MINHASH_THRESHOLD`` with an evaluation prompt (MBPP's sibling problems: "odd" vs "even" variants).
The thresholds were chosen by reading the matches on MBPP train (docs/BENCHMARKS.md, "Decontamination").
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from datasketch import MinHash, MinHashLSH

T = TypeVar("T")
NGRAM = 13
MINHASH_THRESHOLD = 0.5
NUM_PERM = 128
EVAL_SETS = (("humaneval", None), ("humanevalplus", None), ("mbpp", "test"), ("mbpp", "validation"),
             ("mbpp", "prompt"), ("mbppplus", None), ("bigcodebench", "instruct"))
"""(benchmark, split) of every evaluation set; SWE-bench is added when its folder is known. BigCodeBench's
``instruct`` tasks carry both its prompts (``prompt`` is the ``complete`` one, ``instruction`` the other)."""
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BASE = 1_000_003


def words(text: str) -> list[str]:
    """Lower-cased identifiers and words of ``text`` (numbers, punctuation and layout dropped)."""
    return _WORD.findall(text.lower())


@cache
def _word_hash(word: str) -> int:
    return zlib.crc32(word.encode())


def gram_hashes(tokens: Sequence[str], n: int) -> np.ndarray:
    """64-bit polynomial hashes of every ``n``-token window ``[len - n + 1]`` (one window if shorter; none if
    empty). Deterministic across processes (crc32 per word)."""
    ids = np.fromiter((_word_hash(w) for w in tokens), dtype=np.uint64, count=len(tokens))
    n = min(n, len(ids))
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    powers = np.array([pow(_BASE, n - 1 - k, 1 << 64) for k in range(n)], dtype=np.uint64)
    return (np.lib.stride_tricks.sliding_window_view(ids, n) * powers).sum(axis=1, dtype=np.uint64)


@dataclass(frozen=True)
class EvalItem:
    """One evaluation task as decontamination sees it."""

    benchmark: str
    task_id: str
    problem: str
    """What the model is shown (prompt / problem statement)."""
    solution: str = ""


@dataclass(frozen=True)
class Match:
    """Why a task is contaminated: the rule, the evaluation item it matched, and the evidence."""

    reason: str
    """``id`` | ``ngram`` | ``minhash``."""
    benchmark: str
    eval_task_id: str
    evidence: str


@dataclass
class DecontaminationReport:
    """What one source lost to decontamination."""

    source: str
    num_in: int = 0
    num_kept: int = 0
    removed: list[dict[str, str]] = field(default_factory=list)
    """One record per removed task: task_id, reason, benchmark, eval_task_id, evidence."""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self.removed:
            out[rec["reason"]] = out.get(rec["reason"], 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "removed_by_reason": self.counts()}


class EvalIndex:
    """Ids, ``NGRAM``-gram hashes and a MinHash LSH of every evaluation item; ``match`` answers for one task."""

    def __init__(self, items: Iterable[EvalItem], ngram: int = NGRAM, threshold: float = MINHASH_THRESHOLD) -> None:
        self.ngram, self.threshold = ngram, threshold
        self.items: dict[str, EvalItem] = {}
        self._ids: dict[str, str] = {}
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._hashes: dict[str, MinHash] = {}
        grams, owners = [], []
        for item in items:
            key = f"{item.benchmark}:{item.task_id}"
            if key in self.items:
                continue
            self.items[key] = item
            self._ids.setdefault(item.task_id, key)
            grams.append(gram_hashes(words(f"{item.problem}\n{item.solution}"), ngram))
            owners.append(np.full(len(grams[-1]), len(self.items) - 1))
            self._hashes[key] = _minhash(item.problem)
            self._lsh.insert(key, self._hashes[key])
        self._keys = list(self.items)
        all_grams = np.concatenate(grams) if grams else np.zeros(0, dtype=np.uint64)
        self._grams, first = np.unique(all_grams, return_index=True)  # sorted; the first owner of each gram
        self._gram_owner = np.concatenate(owners)[first] if grams else np.zeros(0, dtype=np.int64)

    def match(self, task_id: str, problem: str, solution: str = "") -> Match | None:
        """The first rule ``(task_id, problem, solution)`` breaks, or None when it is clean."""
        if task_id in self._ids:
            return self._found("id", self._ids[task_id], task_id)
        tokens = words(f"{problem}\n{solution}")
        hashes = gram_hashes(tokens, self.ngram)
        where = np.searchsorted(self._grams, hashes).clip(max=max(0, len(self._grams) - 1))
        hits = np.flatnonzero(self._grams[where] == hashes) if len(self._grams) else []
        if len(hits):
            pos = int(hits[0])
            owner = self._keys[int(self._gram_owner[where[pos]])]
            return self._found("ngram", owner, " ".join(tokens[pos:pos + self.ngram]))
        mh = _minhash(problem)
        near = [(self._hashes[k].jaccard(mh), k) for k in self._lsh.query(mh)]
        near = [(j, k) for j, k in near if j >= self.threshold]
        if near:
            jaccard, key = max(near)
            return self._found("minhash", key, f"estimated Jaccard {jaccard:.2f}")
        return None

    def _found(self, reason: str, key: str, evidence: str) -> Match:
        item = self.items[key]
        return Match(reason, item.benchmark, item.task_id, evidence)


@cache
def _permutations() -> tuple:
    return MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32").permutations


def _minhash(text: str) -> MinHash:
    """MinHash of the word 3-shingles of ``text`` (shingle hashes from ``gram_hashes``, 32 bits)."""
    mh = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=int, permutations=_permutations(), scheme="affine32")
    mh.update_batch((gram_hashes(words(text), 3) & np.uint64(0xFFFFFFFF)).tolist())
    return mh


def eval_items(swebench_dir: Path | None = None) -> list[EvalItem]:
    """Every evaluation set's items (``EVAL_SETS``, plus SWE-bench Lite statements and gold patches from
    ``swebench_dir``: a repository task whose code is what a gold patch changes is contaminated too)."""
    from evals.datasets import load

    items = []
    for name, split in EVAL_SETS:
        label = f"{name}-{split}" if name == "mbpp" else name
        items += [EvalItem(label, t.task_id, _problem(t), t.canonical_solution) for t in load(name, split)]
    if swebench_dir is not None:
        items += [EvalItem("swebench", t.task_id, t.prompt, t.metadata.get("instance", {}).get("patch", ""))
                  for t in load("swebench", swebench_dir=swebench_dir)]
        items += _swebench_lite(Path(swebench_dir))
    return items


def _problem(task: Any) -> str:
    return task.prompt if task.instruction == task.prompt else f"{task.prompt}\n{task.instruction}"


def _swebench_lite(folder: Path) -> list[EvalItem]:
    """The rest of SWE-bench Lite's problem statements shipped for decontamination (``swe-bench-lite-*.jsonl``)."""
    import json

    items = []
    for path in sorted(folder.glob("swe-bench-lite-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                items.append(EvalItem("swebench-lite", row["instance_id"], row.get("problem_statement", ""),
                                      row.get("patch", "")))
    return items


@cache
def default_index(swebench_dir: str | None = None) -> EvalIndex:
    """The index of every evaluation set, built once per process."""
    return EvalIndex(eval_items(Path(swebench_dir) if swebench_dir else None))


FIM_FIELDS: dict[str, Callable[[Any], str]] = {
    "problem": lambda t: f"{t.prefix[-4000:]}\n{t.suffix[:4000]}", "solution": lambda t: t.middle}
"""How a fill-in-the-middle task (``evals.repo.task.FimTask``) reads: the text around the hole (up to 4,000
characters each side: what the model sees first) and the hole."""


def decontaminate(tasks: Iterable[T], source: str, index: EvalIndex | None = None, *,
                  ident: Callable[[T], str] = lambda t: t.task_id,
                  problem: Callable[[T], str] = lambda t: t.instruction,
                  solution: Callable[[T], str] = lambda t: t.reference) -> tuple[list[T], DecontaminationReport]:
    """The tasks of ``source`` that match no evaluation item, and the report of the others.

    Defaults read an ``RLTask``; other task types pass ``ident`` / ``problem`` / ``solution`` (``FIM_FIELDS``
    for repository fill-in-the-middle tasks: ``decontaminate(tasks, "repo:NAME", **FIM_FIELDS)``).
    """
    index = index or default_index()
    report = DecontaminationReport(source)
    kept = []
    for task in tasks:
        report.num_in += 1
        found = index.match(ident(task), problem(task), solution(task))
        if found is None:
            kept.append(task)
        else:
            report.removed.append({"task_id": ident(task), **asdict(found)})
    report.num_kept = len(kept)
    return kept, report
