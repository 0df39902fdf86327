"""MBPP (974 problems; split by task id as in the paper) and MBPP+ (EvalPlus v0.2.0, 378 problems)."""

from __future__ import annotations

import re
from pathlib import Path

from evals.datasets.files import DatasetError, data_file, read_jsonl
from evals.datasets.programs import diff_test
from evals.task import Task

MBPP_FILE = ("mbpp", "mbpp.jsonl.gz")
MBPPPLUS_FILE = ("mbppplus", "MbppPlus-v0.2.0-reconstructed.jsonl.gz")

MBPP_SPLITS = {"prompt": range(1, 11), "test": range(11, 511), "validation": range(511, 601), "train": range(601, 975)}
"""Task-id ranges of the paper's split: test 11-510, validation 511-600, train 601-974, prompt 1-10."""


def outside_train_validation(task_id: str) -> bool:
    """True for an MBPP / MBPP+ task whose MBPP id is in the test or prompt range (1-510): never an RL training
    task (train 601-974) nor a promotion task (validation 511-600). 231 of MBPP+'s 378 tasks."""
    number = task_id.rsplit("/", 1)[-1]
    return number.isdigit() and int(number) < MBPP_SPLITS["validation"].start


def mbpp_prompt(text: str, first_assert: str) -> str:
    """The EvalPlus MBPP prompt: the description and one example assertion in a docstring."""
    return f'"""\n{text.strip()}\n{first_assert.strip()}\n"""\n'


def entry_point_of(code: str, test: str) -> str:
    """The function of ``code`` that ``test`` calls (else the last one defined; "" when none is)."""
    names = re.findall(r"^def\s+(\w+)\s*\(", code, flags=re.M)
    for name in names:
        if re.search(rf"\b{name}\s*\(", test):
            return name
    return names[-1] if names else ""


def load_mbpp(split: str = "test", path: Path | None = None) -> list[Task]:
    """Original MBPP: the listed asserts (and ``test_setup_code``) form the single test program."""
    if split not in MBPP_SPLITS:
        raise DatasetError(f"unknown MBPP split {split!r}; choose one of {sorted(MBPP_SPLITS)}")
    ids = MBPP_SPLITS[split]
    tasks = []
    for r in read_jsonl(path or data_file(*MBPP_FILE), ("task_id", "text", "code", "test_list", "test_setup_code")):
        if r["task_id"] not in ids:
            continue
        asserts = "\n".join(r["test_list"])
        code = r["code"].replace("\r\n", "\n")
        tasks.append(
            Task(
                task_id=f"Mbpp/{r['task_id']}",
                benchmark="mbpp",
                prompt=mbpp_prompt(r["text"], r["test_list"][0]),
                entry_point=entry_point_of(code, asserts),
                tests=(f"{r['test_setup_code']}\n{asserts}\n",),
                canonical_solution=code,
                metadata={"split": split, "text": r["text"], "test_list": r["test_list"]},
            )
        )
    return tasks


def load_mbppplus(path: Path | None = None) -> list[Task]:
    """MBPP+: ``base`` and ``plus`` differential tests against the canonical solution."""
    tasks = []
    for r in read_jsonl(path or data_file(*MBPPPLUS_FILE), ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol", "assertion")):
        first_assert = next((ln for ln in r["assertion"].splitlines() if ln.strip()), "")
        text = r["prompt"].strip().strip("'\"").strip()
        args = ("mbpp", r["task_id"], r["entry_point"])
        tasks.append(
            Task(
                task_id=r["task_id"],
                benchmark="mbppplus",
                prompt=mbpp_prompt(text, first_assert),
                entry_point=r["entry_point"],
                tests=(diff_test(*args, r["base_input"], r["atol"], "base"),
                       diff_test(*args, r["plus_input"], r["atol"], "plus")),
                test_names=("base", "plus"),
                canonical_solution=r["canonical_solution"],
                differential=True,
                metadata={"text": text},
            )
        )
    return tasks
