"""What the measured kernel choices share: how a candidate is timed, and the cache of choices made
(``<cache root>/autotune.json``, or in ``$CODELOOP_AUTOTUNE_DIR``; one entry per key: CPU model, torch, shapes).

Used by the weights' autotune (``inference/autotune.py``) and the attention kernels' choices
(``inference/attention/cpu_prompt.py``, ``cpu_decode.py``: :func:`choose_measured`). Writes are atomic; an unreadable file reads as empty (re-measured).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from inference.cpu_info import cpu_model

CACHE_FILE = "autotune.json"
FORCE_ENV = "CODELOOP_AUTOTUNE"
"""Set to "force" to re-measure choices already cached."""
DIR_ENV = "CODELOOP_AUTOTUNE_DIR"
"""Where ``autotune.json`` lives, if not the cache root (the test suite keeps its tiny models' choices apart)."""
log = logging.getLogger(__name__)


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``run()`` over ``repeats`` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def cache_dir() -> Path:
    """The folder of ``autotune.json``: ``$CODELOOP_AUTOTUNE_DIR``, else the cache root."""
    from inference.catalog import cache_root

    env = os.environ.get(DIR_ENV)
    return Path(env) if env else cache_root()


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


def choose_measured(what: str, shape: str, measure: Callable[[], dict[str, float]], tokens: int) -> str:
    """The fastest of ``measure()``'s kernels (milliseconds per call of ``tokens`` tokens) for ``what`` at
    ``shape`` on this CPU, core count, torch and thread count: cached under the cache root, measured (and
    logged) once, or again with ``CODELOOP_AUTOTUNE=force``."""
    import torch

    key = f"{what}|{cpu_model()}|{os.cpu_count()}cpu|torch {torch.__version__}|{torch.get_num_threads()}t|{shape}"
    path = cache_dir() / CACHE_FILE
    cached = read_entries(path).get(key)
    if isinstance(cached, dict) and isinstance(cached.get("kernel"), str) and \
            isinstance(cached.get("ms"), dict) and cached["kernel"] in cached["ms"] and \
            os.environ.get(FORCE_ENV) != "force":
        return cached["kernel"]
    table = measure()
    kernel = min(table, key=table.get)
    log.info("kernels: %s %s (ms per %d-token call: %s)", what, kernel, tokens,
             ", ".join(f"{k} {v:.3f}" for k, v in table.items()))
    write_entry(path, key, {"kernel": kernel, "ms": table})
    return kernel
