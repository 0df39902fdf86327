"""Append-only JSONL records of a run: one line per (task, sample), written with fsync.

Invariants: a key (task_id, sample_index) appears at most once among the records a reader accepts
(the first one wins); a line is either a whole JSON object ending in newline or, only at the very end
of the file after a crash, a torn fragment that readers ignore and writers cut off before appending.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.jsonl import append_jsonl

Key = tuple[str, int]


@dataclass
class SampleResult:
    """The verdict for one sample of one task."""

    task_id: str
    sample_index: int
    passed: bool
    status: str
    """A sandbox RunStatus value, ``no_code`` (nothing to run) or a SWE-bench outcome."""
    tests: dict[str, bool] = field(default_factory=dict)
    """Verdict per named test program (e.g. ``base``, ``plus``)."""
    message: str = ""
    completion: str = ""
    """The raw model output."""
    program: str = ""
    """The program that was executed (what official tools call the solution)."""
    num_generated_tokens: int = 0
    exec_seconds: float = 0.0

    @property
    def key(self) -> Key:
        return (self.task_id, self.sample_index)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleResult:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass
class LoadReport:
    """What reading a JSONL file found besides good records."""

    corrupt_lines: list[int] = field(default_factory=list)
    truncated_tail: bool = False
    duplicates: int = 0


class JsonlStore:
    """Append-only store of dict records keyed by (task_id, sample_index); safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> tuple[dict[Key, dict], LoadReport]:
        """Read every record; a torn last line is ignored, a corrupt line elsewhere is reported."""
        report = LoadReport()
        records: dict[Key, dict] = {}
        if not self.path.exists():
            return records, report
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        for num, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            is_tail = num == len(lines)  # no newline after it: a write cut short
            try:
                rec = json.loads(raw)
                key = (str(rec["task_id"]), int(rec["sample_index"]))
            except (ValueError, KeyError, TypeError):
                if is_tail:
                    report.truncated_tail = True
                else:
                    report.corrupt_lines.append(num)
                continue
            if is_tail:
                report.truncated_tail = True  # whole JSON but unterminated: treat as not written
                continue
            if key in records:
                report.duplicates += 1
                continue
            records[key] = rec
        return records, report

    def repair_tail(self) -> None:
        """Cut a torn last line so the next append starts on a fresh line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())

    def append(self, record: dict) -> None:
        with self._lock:
            append_jsonl(self.path, record)


def result_record(result: SampleResult) -> dict:
    return asdict(result)


def per_task_passes(run_dir: Path, metric: str = "passed") -> dict[str, float]:
    """task_id -> mean of ``metric`` over samples (``passed`` of an eval run, or ``tests_pass`` /
    ``exact_match`` / ``edit_similarity`` of a ``codeloop eval fim`` run), read from ``results.jsonl``.

    Samples the sandbox could not judge (``judged`` is False) are left out: they say nothing about the
    model, and counting them as failures would bias a comparison towards whichever run had fewer.
    """
    store = JsonlStore(Path(run_dir) / "results.jsonl")
    records, _ = store.load()
    sums: dict[str, list[float]] = {}
    for rec in records.values():
        if judged(rec) and metric in rec:
            sums.setdefault(rec["task_id"], []).append(float(rec[metric]))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def judged(record: dict[str, Any]) -> bool:
    """False when the sandbox itself failed on the record's run: an eval result with status
    ``sandbox_error``, or an eval fim check that broke with a sandbox error."""
    if record.get("status") == "sandbox_error":
        return False
    check = record.get("check") or {}
    return not (check.get("status") == "broken" and str(check.get("message", "")).startswith("sandbox_error"))
