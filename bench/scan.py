"""`codeloop bench scan` (the security scanner): licence-match recall / false positives, detector precision / recall,
and per-suggestion latency. Numbers come out as JSON; nothing here asserts a threshold.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from lsp.percentile import percentile
from security.config import LABELLED_DIR, ScanConfig
from security.corpus import stdlib_root
from security.finding import Kind, Severity
from security.scanner import scan


def detector_bench(labelled_dir: Path = LABELLED_DIR) -> dict:
    """Snippet-level precision / recall per labelled file (``<kind>.jsonl``: code, expect)."""
    return {path.stem: _score_file(path) for path in sorted(labelled_dir.glob("*.jsonl"))}


def _score_file(path: Path) -> dict:
    kind = Kind(path.stem)
    floor = (Severity.LOW if kind is Kind.PII else Severity.MEDIUM).rank  # PII findings are all "low"
    tp = fp = fn = tn = 0
    misses = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        found = {f.rule_id for f in scan(item["code"], filename=item.get("filename"))
                 if f.kind is kind and f.severity.rank >= floor}
        expected = set(item["expect"])
        if expected:
            tp, fn = (tp + 1, fn) if found & expected else (tp, fn + 1)
        else:
            fp, tn = (fp + 1, tn) if found else (fp, tn + 1)
        if bool(expected) != bool(found & expected if expected else found):
            misses.append({"id": item["id"], "expected": sorted(expected), "found": sorted(found)})
    return {"precision": round(tp / max(tp + fp, 1), 4), "recall": round(tp / max(tp + fn, 1), 4),
            "positives": tp + fn, "negatives": fp + tn, "misses": misses}


def latency_bench(runs: int = 50) -> dict:
    """Median / p95 ms to scan a 50-line suggestion with every detector on (plus the first call)."""
    code = _fifty_lines()
    config = ScanConfig()
    started = time.perf_counter()
    scan(code, config=config)
    first_ms = (time.perf_counter() - started) * 1000
    times, cpu_times = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        scan(code, config=config)
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.process_time() - cpu_started) * 1000)
    times.sort()
    no_index = replace(config, licence_index=False)
    started = time.perf_counter()
    scan(code, config=no_index)
    return {"lines": len(code.splitlines()), "first_call_ms": round(first_ms, 2),
            "median_ms": round(statistics.median(times), 2),
            "median_cpu_ms": round(statistics.median(cpu_times), 2),  # wall time suffers on a shared box
            "p95_ms": round(percentile(times, 0.95), 2),
            "without_index_ms": round((time.perf_counter() - started) * 1000, 2), "runs": runs}


def _fifty_lines() -> str:
    source = (stdlib_root() / "json" / "encoder.py").read_text()
    lines = source.splitlines()[200:246]
    risky = ['    import subprocess', '    subprocess.run(f"ls {path}", shell=True)',
             '    token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"', '    requests.get(url, verify=False)']
    return "\n".join(risky + lines) + "\n"
