"""Where benchmark files live and how to read them (gzip or plain JSONL)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""The copies shipped inside the package (each with its licence beside it)."""


class DatasetError(Exception):
    """A benchmark file is missing or unreadable; the message names the path."""


def data_file(*parts: str) -> Path:
    """Path of a shipped data file; raises ``DatasetError`` when it is absent."""
    path = DATA_DIR.joinpath(*parts)
    if not path.is_file():
        raise DatasetError(f"benchmark file not found: {path}")
    return path


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> Iterator[dict]:
    """Yield one dict per non-empty line of ``path`` (``.gz`` read transparently); each must hold ``required``."""
    if not Path(path).is_file():
        raise DatasetError(f"benchmark file not found: {path}")
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{num}: not valid JSON ({exc.msg})") from exc
            missing = [k for k in required if not isinstance(row, dict) or k not in row]
            if missing:
                raise DatasetError(f"{path}:{num}: missing field(s) {missing}")
            yield row
