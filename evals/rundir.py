"""A run's folder: ``run.json`` (the spec), ``generations.jsonl``, ``results.jsonl``, ``summary.json``."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from evals.results import JsonlStore, LoadReport
from evals.spec import EvalSpec


class RunDirError(Exception):
    """The run folder cannot be used as asked (exists without --resume, or holds another experiment)."""


def default_run_dir(spec: EvalSpec, root: Path = Path("runs")) -> Path:
    model = re.sub(r"[^\w.-]+", "_", Path(spec.model).name or spec.model)
    name = spec.benchmark if spec.data_path is None else f"{spec.benchmark}-{Path(spec.data_path).stem}"
    return root / f"{name}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    """Owns the files of one run; ``open()`` checks that resuming continues the same experiment."""

    def __init__(self, path: Path, spec: EvalSpec) -> None:
        self.path = Path(path)
        self.spec = spec
        self.results = JsonlStore(self.path / "results.jsonl")
        self.generations = JsonlStore(self.path / "generations.jsonl")

    def open(self) -> None:
        meta = self.path / "run.json"
        if meta.exists():
            if not self.spec.resume:
                raise RunDirError(f"{self.path} already holds a run: pass --resume to continue it or pick another --run-dir")
            saved = json.loads(meta.read_text())["identity"]
            mine = json.loads(json.dumps(self.spec.identity()))
            diff = {k: (saved.get(k), v) for k, v in mine.items() if saved.get(k) != v}
            if diff:
                raise RunDirError(f"{self.path} holds a different experiment; differing fields (saved, now): {diff}")
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({"identity": self.spec.identity(), "created": time.time()}, indent=1))

    def load(self, store: JsonlStore, warn) -> dict[tuple[str, int], dict]:
        records, report = store.load()
        _warn_report(store.path, report, warn)
        store.repair_tail()  # the next append must start on a fresh line
        return records

    def write_summary(self, summary: dict[str, Any]) -> Path:
        path = self.path / "summary.json"
        path.write_text(json.dumps(summary, indent=1))
        return path


def _warn_report(path: Path, report: LoadReport, warn) -> None:
    if report.corrupt_lines:
        warn(f"{path}: skipped {len(report.corrupt_lines)} corrupt line(s): {report.corrupt_lines[:10]}")
    if report.truncated_tail:
        warn(f"{path}: ignored a truncated last line (an interrupted write)")
    if report.duplicates:
        warn(f"{path}: ignored {report.duplicates} duplicate record(s)")
