"""Benchmark loaders behind one call: ``load(name, split=..., subset=...) -> list[Task]``.

| name          | splits                                   | tasks |
|---------------|------------------------------------------|-------|
| humaneval     | test                                     | 164   |
| humanevalplus | test                                     | 164   |
| mbpp          | test / train / validation / prompt       | 500 / 374 / 90 / 10 |
| mbppplus      | test                                     | 378   |
| bigcodebench  | complete / instruct (subset full, stdlib, numpy-pandas) | 1140 / 293 / 467 |
| swebench      | test (needs the external folder)         | 29    |
| custom        | test (a user's JSONL file, ``path``)     | any   |
"""

from __future__ import annotations

from pathlib import Path

from evals.datasets.bigcodebench import SUBSETS, load_bigcodebench
from evals.datasets.bigcodebench import coverage as bigcodebench_coverage
from evals.datasets.custom import BENCHMARK as CUSTOM
from evals.datasets.custom import load_custom
from evals.datasets.files import DatasetError
from evals.datasets.humaneval import load_humaneval, load_humanevalplus
from evals.datasets.mbpp import MBPP_SPLITS, load_mbpp, load_mbppplus
from evals.datasets.swebench import load_swebench
from evals.task import Task

BENCHMARKS = ("humaneval", "humanevalplus", "mbpp", "mbppplus", "bigcodebench", "swebench")
DEFAULT_SPLITS = {"mbpp": "test", "bigcodebench": "complete"}

__all__ = ["BENCHMARKS", "CUSTOM", "DatasetError", "SUBSETS", "MBPP_SPLITS", "Task", "coverage", "load", "default_split"]


def default_split(name: str) -> str:
    return DEFAULT_SPLITS.get(name, "test")


def coverage(name: str, subset: str | None, num_tasks: int) -> str:
    """The sentence every report carries about which part of the benchmark ``num_tasks`` loaded tasks are."""
    if name == "bigcodebench":
        return bigcodebench_coverage(subset or "full")
    return f"{num_tasks} tasks" + (" (your file)" if name == CUSTOM else "")


def load(
    name: str,
    split: str | None = None,
    *,
    subset: str | None = None,
    path: Path | None = None,
    swebench_dir: Path | None = None,
) -> list[Task]:
    """Tasks of benchmark ``name``. ``path`` overrides the shipped data file; SWE-bench needs ``swebench_dir``."""
    split = split or default_split(name)
    if name == "mbpp":
        return load_mbpp(split, path)
    if split != "test" and name != "bigcodebench":
        raise DatasetError(f"{name} has only the 'test' split (got {split!r})")
    if name == "humaneval":
        return load_humaneval(path)
    if name == "humanevalplus":
        return load_humanevalplus(path)
    if name == "mbppplus":
        return load_mbppplus(path)
    if name == "bigcodebench":
        return load_bigcodebench(split, subset or "full", path)
    if name == CUSTOM:
        if path is None:
            raise DatasetError("a custom benchmark needs its JSONL file (path)")
        return load_custom(path)
    if name == "swebench":
        if swebench_dir is None:
            raise DatasetError("swebench needs the offline SWE-bench folder (swebench_dir)")
        return load_swebench(swebench_dir)
    raise DatasetError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
