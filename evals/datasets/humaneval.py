"""HumanEval (164 problems) and HumanEval+ (EvalPlus v0.1.10: base + plus inputs)."""

from __future__ import annotations

from pathlib import Path

from evals.datasets.files import data_file, read_jsonl
from evals.datasets.programs import check_call, diff_test
from evals.task import Task

HUMANEVAL_FILE = ("humaneval", "HumanEval.jsonl.gz")
HUMANEVALPLUS_FILE = ("humanevalplus", "HumanEvalPlus.jsonl.gz")


def load_humaneval(path: Path | None = None) -> list[Task]:
    """The original HumanEval; one test program: the problem's ``check`` on the entry point."""
    rows = read_jsonl(path or data_file(*HUMANEVAL_FILE), ("task_id", "prompt", "entry_point", "test", "canonical_solution"))
    return [
        Task(
            task_id=r["task_id"],
            benchmark="humaneval",
            prompt=r["prompt"],
            entry_point=r["entry_point"],
            tests=(check_call(r["test"], r["entry_point"]),),
            canonical_solution=r["prompt"] + r["canonical_solution"],
        )
        for r in rows
    ]


def load_humanevalplus(path: Path | None = None) -> list[Task]:
    """HumanEval+: tests ``base`` (base inputs) and ``plus`` (extra inputs), both differential."""
    tasks = []
    for r in read_jsonl(path or data_file(*HUMANEVALPLUS_FILE), ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol")):
        reference = r["prompt"] + r["canonical_solution"]
        args = ("humaneval", r["task_id"], r["entry_point"])
        tasks.append(
            Task(
                task_id=r["task_id"],
                benchmark="humanevalplus",
                prompt=r["prompt"],
                entry_point=r["entry_point"],
                tests=(diff_test(*args, r["base_input"], r["atol"], "base"),
                       diff_test(*args, r["plus_input"], r["atol"], "plus")),
                test_names=("base", "plus"),
                canonical_solution=reference,
                differential=True,
                metadata={"num_base_inputs": len(r["base_input"]), "num_plus_inputs": len(r["plus_input"])},
            )
        )
    return tasks
