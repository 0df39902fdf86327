"""The measured-choice cache: ``<cache root>/autotune.json``, one entry per key (CPU model, torch, shapes).

Shared by the weights' autotune (``inference/autotune.py``) and the prompt attention's choice
(``inference/attention/cpu_prompt.py``). Writes are atomic; an unreadable file reads as empty (re-measured).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CACHE_FILE = "autotune.json"


def read_entries(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_entry(path: Path, key: str, value: object) -> None:
    """Set ``key`` (re-reading the file first: another process may have written meanwhile)."""
    entries = read_entries(path)
    entries[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
    os.replace(tmp, path)
