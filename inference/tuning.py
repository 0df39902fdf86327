"""What the measured kernel choices share: how a candidate is timed, and the cache of choices made
(``<cache root>/autotune.json``, one entry per key: CPU model, torch, shapes).

Used by the weights' autotune (``inference/autotune.py``) and the prompt attention's choice
(``inference/attention/cpu_prompt.py``). Writes are atomic; an unreadable file reads as empty (re-measured).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

CACHE_FILE = "autotune.json"


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``run()`` over ``repeats`` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


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
