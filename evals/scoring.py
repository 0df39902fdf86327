"""From per-sample records to an `EvalSummary` (pass@k overall and per named test)."""

from __future__ import annotations

from collections import Counter

from evals.metrics import ks_for, mean_pass_at_k
from evals.spec import EvalSpec, EvalSummary
from evals.subsets import subsets_of
from evals.task import Task


def _scores(counts: list[tuple[int, int]], num_samples: int) -> dict[str, float]:
    out = {}
    for k in ks_for(num_samples):
        value = mean_pass_at_k(counts, k)
        if value is not None:
            out[f"pass@{k}"] = value
    return out


def summarize(spec: EvalSpec, tasks: list[Task], records: dict[tuple[str, int], dict], coverage: str) -> EvalSummary:
    """Score ``records`` over ``tasks``; a task without any record yet is left out (and noted)."""
    by_task: dict[str, list[dict]] = {t.task_id: [] for t in tasks}
    for (task_id, _), rec in records.items():
        if task_id in by_task:
            by_task[task_id].append(rec)
    scored = [t for t in tasks if by_task[t.task_id]]
    counts = [(len(by_task[t.task_id]), sum(bool(r["passed"]) for r in by_task[t.task_id])) for t in scored]
    per_test: dict[str, dict[str, float]] = {}
    for name in tasks[0].test_names if tasks else ():
        named = [(len(by_task[t.task_id]), sum(bool(r.get("tests", {}).get(name)) for r in by_task[t.task_id]))
                 for t in scored]
        per_test[name] = _scores(named, spec.samples)
    subsets = {}
    for subset in subsets_of(spec.benchmark):
        part = [c for t, c in zip(scored, counts, strict=True) if subset.keep(t.task_id)]
        subsets[subset.name] = {**_scores(part, spec.samples), "num_tasks": len(part)}
    notes = []
    if len(scored) < len(tasks):
        notes.append(f"{len(tasks) - len(scored)} of {len(tasks)} tasks have no result yet")
    used = [r for t in scored for r in by_task[t.task_id]]
    return EvalSummary(
        benchmark=spec.benchmark, model=spec.model, adapter=spec.adapter, backend=spec.backend,
        num_tasks=len(scored), num_samples=spec.samples, temperature=spec.temperature,
        pass_at_k=_scores(counts, spec.samples), per_test=per_test, subsets=subsets, num_results=len(used),
        status_counts=dict(Counter(r["status"] for r in used)), coverage=coverage,
        num_generated_tokens=sum(int(r.get("num_generated_tokens", 0)) for r in used),
        run_dir=str(spec.run_dir or ""), notes=notes,
    )
