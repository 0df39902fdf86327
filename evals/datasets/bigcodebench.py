"""BigCodeBench v0.1.4 (1,140 tasks): ``complete`` and ``instruct`` prompts, library subsets."""

from __future__ import annotations

import ast
import functools
import re
import sys
import warnings
from collections import Counter
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

from evals.datasets.files import DatasetError, data_file, read_jsonl
from evals.datasets.programs import unittest_call
from evals.task import Task

BIGCODEBENCH_FILE = ("bigcodebench", "BigCodeBench-v0.1.4-reconstructed.jsonl.gz")
ENVIRONMENT_FILE = ("bigcodebench", "environment.toml")
"""Measured needs (network access, programs) that no library list shows; see the comments in the file."""
BIGCODEBENCH_SPLITS = ("complete", "instruct")
NUM_TASKS_FULL = 1140
_FIELDS = ("task_id", "complete_prompt", "instruct_prompt", "canonical_solution", "test", "entry_point", "libs",
           "code_prompt")

_STDLIB = frozenset(sys.stdlib_module_names) - {"tkinter", "turtle", "turtledemo", "idlelib"}
"""The standard library as the sandbox image has it (Debian's python3 ships no Tk)."""
SUBSETS: dict[str, frozenset[str] | None] = {
    "full": None,
    "stdlib": frozenset(),
    "numpy-pandas": frozenset({"numpy", "pandas"}),
}
"""Named subsets: tasks whose libraries (the solution's ``libs``, the test's imports and the optional
libraries pandas would import for them) are all in the standard library plus the listed packages, and
that need nothing ``ENVIRONMENT_FILE`` records (``None`` = every task). The sandbox image provides numpy
and pandas beyond the stdlib, no network, and no programs beyond Debian minbase + python3."""
PANDAS_OPTIONAL_LIBS: dict[str, re.Pattern[str]] = {
    "matplotlib": re.compile(r"\.(plot|hist|boxplot)\b"),
    "openpyxl": re.compile(r"\b(read_excel|to_excel|ExcelWriter|ExcelFile)\b"),
}
"""Libraries pandas imports only when one of these calls runs (plotting, Excel I/O): a task whose
solution or test calls one needs the library although neither its ``libs`` nor its imports name it."""


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


def pandas_optional_libs(row: dict, libs: list[str]) -> list[str]:
    """The ``PANDAS_OPTIONAL_LIBS`` a pandas task's canonical solution or test calls upon."""
    if "pandas" not in libs:
        return []
    code = row["canonical_solution"] + "\n" + row["test"]
    return [lib for lib, calls in PANDAS_OPTIONAL_LIBS.items() if calls.search(code)]


@functools.cache
def environment_needs() -> dict[str, str]:
    """task_id -> what it needs beyond libraries (a section of ``ENVIRONMENT_FILE``)."""
    with data_file(*ENVIRONMENT_FILE).open("rb") as f:
        try:
            table = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise DatasetError(f"{data_file(*ENVIRONMENT_FILE)}: {exc}") from exc
    return {task_id: need for need, entries in table.items() for task_id in entries}


def in_subset(libs: list[str], subset: str) -> bool:
    if subset not in SUBSETS:
        raise DatasetError(f"unknown BigCodeBench subset {subset!r}; choose one of {sorted(SUBSETS)}")
    extra = SUBSETS[subset]
    return extra is None or all(lib in _STDLIB or lib in extra for lib in libs)


def environment_gap(row: dict, declared: list[str], subset: str) -> str | None:
    """What a task whose declared libraries fit ``subset`` still needs and the subset's environment lacks
    (a reason for the coverage line), or None."""
    if SUBSETS[subset] is None:
        return None
    missing = [lib for lib in pandas_optional_libs(row, declared) if not in_subset([lib], subset)]
    if missing:
        return f"{' and '.join(missing)} via pandas"
    return environment_needs().get(row["task_id"])


def select(rows: list[dict], subset: str) -> tuple[list[dict], Counter[str]]:
    """The rows of ``subset`` and, per reason, how many rows whose declared libraries fit were left out."""
    kept, left_out = [], Counter()
    for row in rows:
        declared = task_libs(row) + test_imports(row["test"])
        if not in_subset(declared, subset):
            continue
        reason = environment_gap(row, declared, subset)
        if reason is None:
            kept.append(row)
        else:
            left_out[reason] += 1
    return kept, left_out


def coverage(subset: str = "full", path: Path | None = None) -> str:
    """One sentence for every report: how much of the benchmark the subset is, and what it leaves out."""
    kept, left_out = select(_rows(path), subset)
    text = f"subset {subset}: {len(kept)} of {NUM_TASKS_FULL} tasks ({100 * len(kept) / NUM_TASKS_FULL:.1f}%)"
    if left_out:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(left_out.items()))
        text += f"; left out for needs beyond the sandbox image: {reasons}"
    return text


def _rows(path: Path | None) -> list[dict]:
    return list(read_jsonl(path or data_file(*BIGCODEBENCH_FILE), _FIELDS))


def load_bigcodebench(split: str = "complete", subset: str = "full", path: Path | None = None) -> list[Task]:
    """Tasks of ``subset``; ``split`` picks the chat instruction (the docstring prompt or the NL one)."""
    if split not in BIGCODEBENCH_SPLITS:
        raise DatasetError(f"unknown BigCodeBench split {split!r}; choose one of {BIGCODEBENCH_SPLITS}")
    tasks = []
    for r in select(_rows(path), subset)[0]:
        libs = task_libs(r)
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
