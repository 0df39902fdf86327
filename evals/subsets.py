"""Named parts of a benchmark reported beside the whole: one definition for eval summaries, `codeloop eval
report` and the RL loop report.

MBPP+ ``outside-train-validation``: the 231 of 378 tasks whose MBPP id is in the test or prompt range, i.e.
never an RL training task (MBPP train, ids 601-974) nor a promotion task (validation, 511-600). The other 147
can have been trained on (before decontamination) or have chosen the promoted adapter, so a held-out claim on
MBPP+ is made on this part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from evals.datasets.mbpp import outside_train_validation


@dataclass(frozen=True)
class Subset:
    name: str
    """The key in ``EvalSummary.subsets`` and the report rows."""
    description: str
    keep: Callable[[str], bool]
    """task_id -> whether the task belongs to the subset."""


SUBSETS: dict[str, tuple[Subset, ...]] = {
    "mbppplus": (Subset("outside-train-validation", "outside MBPP train/validation", outside_train_validation),),
}


def subsets_of(benchmark: str) -> tuple[Subset, ...]:
    """The named subsets of ``benchmark`` (our benchmark or RL eval name; none for most benchmarks)."""
    return SUBSETS.get(benchmark, ())
