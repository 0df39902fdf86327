"""Scores of ``codeloop eval fim`` runs: one run's summary, and runs side by side (``eval fim-report``).

Per kind: exact match (the headline for ``line``, single-line), edit similarity (the headline for ``body``
and ``block``, multi-line), tests-pass (every covering test passes with the completion spliced in) and the
mean fraction of tests passing. Side by side, each run's tests-pass and exact match are compared with the
first run's over the tasks both scored, with a paired bootstrap 95% interval.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.jsonl import read_jsonl
from evals.metrics import bootstrap_ci, paired_bootstrap
from evals.repo.completions import completion_settings
from evals.repo.spans import KINDS
from evals.repo.task import FimTask

METRICS = ("exact_match", "edit_similarity", "tests_pass", "tests_fraction")


class FimReportError(ValueError):
    """A folder is not a finished ``codeloop eval fim`` run."""


@dataclass
class FimSummary:
    label: str
    engine: str
    tasks_file: str
    split: str | None
    num_tasks: int
    num_results: int
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    """kind -> {num, exact_match, edit_similarity, tests_pass, tests_fraction}; ``all`` over every kind."""
    num_errors: int = 0
    """Completions the engine failed to produce (scored as empty)."""
    generation_seconds: float = 0.0
    check_seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FimSummary:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def summarize(spec: Any, tasks: list[FimTask], results: dict[tuple[str, int], dict]) -> FimSummary:
    records = [results[(t.task_id, 0)] for t in tasks if (t.task_id, 0) in results]
    summary = FimSummary(spec.label or spec.engine.describe(), spec.engine.describe(), str(spec.tasks_file),
                         spec.split, len(tasks), len(records), settings=completion_settings(spec.lsp_settings()),
                         run_dir=str(spec.run_dir))
    for kind in (*KINDS, "all"):
        mine = [r for r in records if kind == "all" or r["kind"] == kind]
        if mine:
            summary.by_kind[kind] = {"num": len(mine), **{m: _mean(mine, m) for m in METRICS if m in mine[0]}}
    summary.num_errors = sum(bool(r.get("error")) for r in records)
    summary.generation_seconds = round(sum(r.get("seconds", 0.0) for r in records), 1)
    summary.check_seconds = round(sum((r.get("check") or {}).get("seconds", 0.0) for r in records), 1)
    if summary.num_errors:
        summary.notes.append(f"{summary.num_errors} completions failed in the engine and count as empty")
    return summary


def _mean(records: list[dict], metric: str) -> float:
    return round(sum(float(r[metric]) for r in records) / len(records), 4)


def _cells(by_kind: dict[str, dict[str, float]]) -> list[str]:
    def pct(kind: str, metric: str) -> str:
        value = by_kind.get(kind, {}).get(metric)
        return "—" if value is None else f"{100 * value:.1f}"

    return [pct("line", "exact_match"), pct("line", "tests_pass"), pct("block", "edit_similarity"),
            pct("block", "tests_pass"), pct("body", "edit_similarity"), pct("body", "tests_pass"),
            pct("all", "exact_match"), pct("all", "tests_pass")]


HEADER = ["line EM", "line tests", "block ES", "block tests", "body ES", "body tests", "all EM", "all tests"]


def write_run_report(run_dir: Path, summary: FimSummary) -> Path:
    nums = "/".join(str(int(summary.by_kind.get(k, {}).get("num", 0))) for k in KINDS)
    lines = [f"# codeloop eval fim: {summary.label}", "", f"Tasks: {summary.tasks_file} (split {summary.split}; "
             f"{summary.num_results}/{summary.num_tasks} scored; body/block/line = {nums})", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
             "| " + " | ".join(_cells(summary.by_kind)) + " |", "",
             f"Generation {summary.generation_seconds:.0f} s (sum over tasks), checks {summary.check_seconds:.0f} s.",
             *(f"- {n}" for n in summary.notes)]
    path = Path(run_dir) / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _load(run_dir: Path) -> tuple[FimSummary, dict[str, dict]]:
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FimReportError(f"{run_dir}: no summary.json (is it a finished `codeloop eval fim` run?)")
    summary = FimSummary.from_dict(json.loads(path.read_text()))
    records = {}
    for rec in read_jsonl(Path(run_dir) / "results.jsonl"):  # a torn last line of a killed run is skipped
        records.setdefault(rec["task_id"], rec)
    return summary, records


def compare(run_dirs: list[Path], out_dir: Path) -> tuple[Path, Path]:
    """``report.md`` and ``report.json`` in ``out_dir``: the runs side by side, deltas against the first."""
    loaded = [_load(d) for d in run_dirs]
    base = loaded[0][1]
    rows, table = [], []
    for summary, records in loaded:
        row: dict[str, Any] = {"label": summary.label, "run_dir": summary.run_dir, "by_kind": summary.by_kind,
                               "generation_seconds": summary.generation_seconds}
        for metric in ("tests_pass", "exact_match"):
            mean, low, high = bootstrap_ci([float(r.get(metric, 0.0)) for r in records.values()])
            d, dlo, dhi, n = paired_bootstrap(_scores(base, metric), _scores(records, metric))
            row[metric] = {"mean": mean, "ci95": [low, high], "delta_vs_first": d, "delta_ci95": [dlo, dhi],
                           "common_tasks": n}
        rows.append(row)
        tp = row["tests_pass"]
        table.append([summary.label, str(summary.num_results), *_cells(summary.by_kind),
                      f"{100 * tp['mean']:.1f} [{100 * tp['ci95'][0]:.1f}, {100 * tp['ci95'][1]:.1f}]",
                      f"{100 * tp['delta_vs_first']:+.1f} [{100 * tp['delta_ci95'][0]:+.1f}, "
                      f"{100 * tp['delta_ci95'][1]:+.1f}]", f"{summary.generation_seconds:.0f}"])
    head = ["run", "tasks", *HEADER, "tests-pass [95% CI]", "Δ tests-pass vs first [95% CI]", "gen s"]
    md = ["# codeloop eval fim: side by side", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
          *("| " + " | ".join(r) + " |" for r in table), "",
          "EM: exact match (single-line `line` tasks); ES: edit similarity (multi-line `block`/`body` tasks); "
          "tests: every covering test passes with the completion spliced in. Δ: paired bootstrap over the "
          "tasks both runs scored (2,000 resamples)."]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text("\n".join(md) + "\n")
    (out_dir / "report.json").write_text(json.dumps(rows, indent=1))
    return out_dir / "report.md", out_dir / "report.json"


def _scores(records: dict[str, dict], metric: str) -> dict[str, float]:
    return {t: float(r.get(metric, 0.0)) for t, r in records.items()}
