"""`Task`: one benchmark problem, the same shape for every benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    """One problem of a benchmark.

    Invariants: ``canonical_solution`` is a complete program (not a function body) that passes every
    program in ``tests`` (empty for a record of a user's own benchmark that has none); each test program runs after the candidate program in the same interpreter and
    fails by raising. ``test_names[i]`` names ``tests[i]`` (e.g. ``base`` and ``plus`` for EvalPlus).
    SWE-bench tasks have no test programs: their instance lives in ``metadata["instance"]``.
    """

    task_id: str
    benchmark: str
    prompt: str
    """Code prefix that a completion continues (the benchmark's base/"complete" prompt)."""
    entry_point: str
    tests: tuple[str, ...]
    canonical_solution: str
    instruction: str = ""
    """Problem text for chat prompting (defaults to ``prompt``)."""
    test_names: tuple[str, ...] = ("base",)
    metadata: dict[str, Any] = field(default_factory=dict)
    differential: bool = False
    """The tests compare the candidate with ``canonical_solution`` (EvalPlus): the sandbox runs them against
    the canonical solution first, in a process the candidate never touches, as the job's ``reference``."""

    @property
    def reference(self) -> str:
        """The job's reference program (see ``differential``); empty for ordinary tests."""
        return self.canonical_solution if self.differential else ""

    def __post_init__(self) -> None:
        if len(self.test_names) != len(self.tests):
            raise ValueError(f"{self.task_id}: {len(self.tests)} tests but test_names={self.test_names}")
        if not self.instruction:
            object.__setattr__(self, "instruction", self.prompt)
