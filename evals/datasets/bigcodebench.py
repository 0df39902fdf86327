"""BigCodeBench v0.1.4 (1,140 tasks): ``complete`` and ``instruct`` prompts, library subsets."""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path

from evals.datasets.files import DatasetError, data_file, read_jsonl
from evals.datasets.programs import unittest_call
from evals.task import Task

BIGCODEBENCH_FILE = ("bigcodebench", "BigCodeBench-v0.1.4-reconstructed.jsonl.gz")
BIGCODEBENCH_SPLITS = ("complete", "instruct")
NUM_TASKS_FULL = 1140

_STDLIB = frozenset(sys.stdlib_module_names) - {"tkinter", "turtle", "turtledemo", "idlelib"}
"""The standard library as the sandbox image has it (Debian's python3 ships no Tk)."""
SUBSETS: dict[str, frozenset[str] | None] = {
    "full": None,
    "stdlib": frozenset(),
    "numpy-pandas": frozenset({"numpy", "pandas"}),
}
"""Named subsets: tasks whose libraries (the solution's ``libs`` and the test's imports) are all in the
standard library plus the listed packages (``None`` = every task). The sandbox image provides numpy and
pandas beyond the stdlib."""


def task_libs(row: dict) -> list[str]:
    return list(ast.literal_eval(row["libs"])) if isinstance(row["libs"], str) else list(row["libs"])


def test_imports(test_src: str) -> list[str]:
    """Top-level module names the test code imports (the task's ``libs`` lists only the solution's)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))  # invalid escapes upstream
            tree = ast.parse(test_src)
    except SyntaxError:
        return []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return sorted(names)


def in_subset(libs: list[str], subset: str) -> bool:
    if subset not in SUBSETS:
        raise DatasetError(f"unknown BigCodeBench subset {subset!r}; choose one of {sorted(SUBSETS)}")
    extra = SUBSETS[subset]
    return extra is None or all(lib in _STDLIB or lib in extra for lib in libs)


def load_bigcodebench(split: str = "complete", subset: str = "full", path: Path | None = None) -> list[Task]:
    """Tasks of ``subset``; ``split`` picks the chat instruction (the docstring prompt or the NL one)."""
    if split not in BIGCODEBENCH_SPLITS:
        raise DatasetError(f"unknown BigCodeBench split {split!r}; choose one of {BIGCODEBENCH_SPLITS}")
    tasks = []
    for r in read_jsonl(path or data_file(*BIGCODEBENCH_FILE), ("task_id", "complete_prompt", "instruct_prompt", "canonical_solution", "test", "entry_point", "libs", "code_prompt")):
        libs = task_libs(r)
        if not in_subset(libs + test_imports(r["test"]), subset):
            continue
        tasks.append(
            Task(
                task_id=r["task_id"],
                benchmark="bigcodebench",
                prompt=r["complete_prompt"],
                instruction=r["complete_prompt"] if split == "complete" else r["instruct_prompt"],
                entry_point=r["entry_point"],
                tests=(unittest_call(r["test"]),),
                canonical_solution=r["complete_prompt"] + r["canonical_solution"],
                metadata={"split": split, "subset": subset, "libs": libs, "code_prompt": r["code_prompt"]},
            )
        )
    return tasks
