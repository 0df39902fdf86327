"""The offline SWE-bench Lite subset (29 validated instances; source trees stay outside the package)."""

from __future__ import annotations

import json
from pathlib import Path

from evals.datasets.files import DatasetError, read_jsonl
from evals.task import Task

INSTANCES_FILE = "instances.jsonl"


def load_swebench(root: Path) -> list[Task]:
    """One Task per instance; ``metadata["instance"]`` holds the row, ``metadata["root"]`` the folder.

    The model may only see ``prompt`` (the problem statement) and the source tree; the gold patch, the
    test patch and the test lists are for grading only.
    """
    root = Path(root)
    if not (root / INSTANCES_FILE).is_file():
        raise DatasetError(
            f"SWE-bench data not found: {root / INSTANCES_FILE} "
            "(set --swebench-dir or $CODELOOP_SWEBENCH_DIR to the offline SWE-bench folder)"
        )
    tasks = []
    for row in read_jsonl(root / INSTANCES_FILE, ("instance_id", "problem_statement", "patch", "test_patch", "FAIL_TO_PASS", "PASS_TO_PASS")):
        for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
            if isinstance(row[key], str):
                row[key] = json.loads(row[key])
        tasks.append(
            Task(
                task_id=row["instance_id"],
                benchmark="swebench",
                prompt=row["problem_statement"],
                entry_point="",
                tests=(),
                test_names=(),
                canonical_solution=row["patch"],
                metadata={"instance": row, "root": str(root)},
            )
        )
    return tasks
