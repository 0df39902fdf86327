"""`RLTask`: a training problem with one assert per test, so a reward can be the fraction passed.

Sources: MBPP train (601–974) and validation (511–600) through ``evals.datasets``; synthetic tasks
(``rl/synth.py``); accepted editor suggestions (``rl/acceptance.py``). ``validate`` keeps a task only when its
reference solution passes every assert in the sandbox and a trivial wrong solution (same signature,
``return None``) fails at least one: tasks that cannot tell right from wrong teach nothing.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rl.filters import FilterReport
from sandbox.types import Limits, RunResult, RunStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RLTask:
    """One problem. Invariant: ``tests`` are single statements (one assert each) run after
    ``setup_code`` + the candidate program; ``reference`` passes them all when the task is validated."""

    task_id: str
    instruction: str
    tests: tuple[str, ...]
    reference: str
    entry_point: str
    setup_code: str = ""
    source: str = ""

    def program(self, code: str) -> str:
        """The program the sandbox runs before the asserts."""
        return f"{code}\n\n{self.setup_code}\n" if self.setup_code.strip() else code

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RLTask:
        return cls(**{**d, "tests": tuple(d["tests"])})


def split_asserts(test_code: str) -> tuple[str, ...]:
    """Top-level statements of a test program, one per test (non-assert statements join the next assert)."""
    try:
        tree = ast.parse(test_code)
    except SyntaxError:
        return ()
    lines = test_code.splitlines()
    tests, pending = [], []
    for node in tree.body:
        text = "\n".join(lines[node.lineno - 1:node.end_lineno])
        pending.append(text)
        if isinstance(node, ast.Assert):
            tests.append("\n".join(pending))
            pending = []
    return tuple(tests)


def from_mbpp(split: str) -> list[RLTask]:
    """MBPP ``train`` or ``validation`` problems as RLTasks (the test split stays held out)."""
    if split not in ("train", "validation"):
        raise ValueError(f"RL tasks come from MBPP train or validation only, not {split!r}")
    from evals.datasets import load

    tasks = []
    for t in load("mbpp", split):
        asserts = tuple(t.metadata["test_list"])
        setup = t.tests[0].split(asserts[0])[0].strip() if asserts else ""
        tasks.append(RLTask(task_id=t.task_id, instruction=t.prompt, tests=asserts, reference=t.canonical_solution,
                            entry_point=t.entry_point, setup_code=setup, source=f"mbpp-{split}"))
    return tasks


def instruction_with_example(text: str, first_assert: str) -> str:
    """Problem text + one example assert in a docstring (the MBPP/EvalPlus layout the evals use)."""
    return f'"""\n{text.strip()}\n{first_assert.strip()}\n"""\n'


def entry_header(reference: str, entry_point: str) -> tuple[list[str], str] | None:
    """The reference's top-level imports and the entry point's header line (``def f(a, b=1):`` with the
    same signature, or ``class C:``); None when the reference does not parse or define it."""
    try:
        tree = ast.parse(reference)
    except SyntaxError:
        return None
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
            return imports, f"def {entry_point}({ast.unparse(node.args)}){returns}:"
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == entry_point:
            return imports, f"class {entry_point}:"
    return None


def wrong_solution(reference: str, entry_point: str) -> str | None:
    """The reference's imports + the entry point with the same signature returning None (a class: empty)."""
    found = entry_header(reference, entry_point)
    if found is None:
        return None
    imports, header = found
    return "\n".join([*imports, header, "    pass" if header.startswith("class") else "    return None", ""])


def validate(tasks: Sequence[RLTask], limits: Limits | None = None, concurrency: int = 2, backend: str = "auto",
             report: FilterReport | None = None, run_many=None) -> list[RLTask]:
    """Tasks whose reference passes every assert and whose asserts reject ``wrong_solution``.

    Sandbox failures (status SANDBOX_ERROR) are retried once; a task still failing is dropped and logged.
    """
    from rl.execution import run_with_retry

    limits = limits or Limits(timeout_s=10.0)
    report = report if report is not None else FilterReport()
    candidates = []
    for task in tasks:
        wrong = wrong_solution(task.reference, task.entry_point) if task.entry_point else None
        if not task.tests:
            report.drop("no_asserts", task.task_id)
        elif wrong is None:
            report.drop("no_entry_point", task.task_id)
        else:
            candidates.append((task, wrong))
    jobs = []
    for task, wrong in candidates:
        jobs.append((task.program(task.reference), list(task.tests), limits))
        jobs.append((task.program(wrong), list(task.tests), limits))
    results = run_with_retry(jobs, concurrency=concurrency, backend=backend, run_many=run_many)
    kept = []
    for i, (task, _) in enumerate(candidates):
        good, bad = results[2 * i], results[2 * i + 1]
        reason = _rejection(good, bad)
        if reason is None:
            kept.append(task)
        else:
            report.drop(reason, task.task_id)
            log.info("task %s dropped: %s (%s)", task.task_id, reason, good.message or bad.message)
    report.kept += len(kept)
    return kept


def _rejection(good: RunResult, bad: RunResult) -> str | None:
    if RunStatus.SANDBOX_ERROR in (good.status, bad.status):
        return "sandbox_error"
    if good.status is not RunStatus.PASSED:
        return f"reference_{good.status.value}"
    if bad.status is RunStatus.PASSED:
        return "asserts_accept_wrong_solution"
    return None


ENTRY = re.compile(r"^def\s+(\w+)\s*\(", re.M)


def guess_entry_point(code: str, tests: Sequence[str]) -> str:
    """The function of ``code`` the asserts call (else the last one defined)."""
    names = ENTRY.findall(code)
    joined = "\n".join(tests)
    return next((n for n in names if re.search(rf"\b{re.escape(n)}\s*\(", joined)), names[-1] if names else "")
