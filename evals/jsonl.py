"""JSON Lines files, one way for the whole code base: read them, append a record, replace them atomically.

Runs are killed at any point (eval and RL runs resume), so a reader skips a line that is not whole JSON (a
torn last line, logged), an append is flushed and fsynced before it returns, and a rewrite goes through a
temporary file and ``os.replace`` so a reader sees the old file or the new one, never half of one. Benchmark
data files, which must be valid, are read strictly by ``evals/datasets/files.py``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def read_jsonl(path: Path) -> list[Any]:
    """The records of ``path`` in order ([] when there is no such file); blank lines and lines that are not
    whole JSON (a write cut short) are skipped, the latter with a warning."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for num, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            log.warning("%s:%d: ignoring a line that is not whole JSON", path, num)
    return out


def _line(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def append_jsonl(path: Path, record: Any) -> None:
    """Append ``record`` as one line and fsync it (the caller serialises concurrent writers)."""
    with open(path, "ab") as f:
        f.write(_line(record).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def write_jsonl_atomic(path: Path, records: Iterable[Any]) -> int:
    """Replace ``path`` by ``records`` as JSON lines, atomically and durably; returns how many were written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(_line(record))
            n += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n
