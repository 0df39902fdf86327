"""Running candidate programs through the sandbox (the only module that talks to it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from evals.results import SampleResult
from evals.task import Task
from sandbox.types import Limits, RunResult, RunStatus, TestStatus

NO_CODE = "no_code"


@dataclass(frozen=True)
class ExecConfig:
    """How candidate programs run: sandbox backend, runs at once, and per-run limits."""

    backend: str = "auto"
    concurrency: int = 2
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Candidate:
    """One program to judge for one (task, sample)."""

    task: Task
    sample_index: int
    completion: str
    program: str
    num_generated_tokens: int = 0
    message: str = ""


def run_programs(jobs: list[tuple[str, tuple[str, ...], str]], config: ExecConfig) -> list[RunResult]:
    """Run ``(code, tests, reference)`` triples (reference: see ``Task.reference``); one RunResult each, in order."""
    import sandbox

    return sandbox.run_many(
        [sandbox.JobSpec(code, list(tests), config.limits, reference) for code, tests, reference in jobs],
        concurrency=config.concurrency, progress=False, backend=config.backend,
    )


def verdict(c: Candidate, result: RunResult | None) -> SampleResult:
    """A SampleResult for a candidate and its sandbox result (None: there was no code to run)."""
    base = dict(task_id=c.task.task_id, sample_index=c.sample_index, completion=c.completion, program=c.program,
                num_generated_tokens=c.num_generated_tokens)
    if result is None:
        return SampleResult(**base, passed=False, status=NO_CODE, tests={n: False for n in c.task.test_names},
                            message=c.message or "the model output holds no code")
    outcomes = {o.index: o.status is TestStatus.PASSED for o in result.tests}
    tests = {name: outcomes.get(i, False) for i, name in enumerate(c.task.test_names)}
    failing = next((o.message for o in result.tests if o.status is not TestStatus.PASSED), "")
    message = "" if result.passed else (result.message or failing or result.stderr[-500:])
    return SampleResult(**base, passed=result.status is RunStatus.PASSED, status=result.status.value, tests=tests,
                        message=message[:2000], exec_seconds=round(result.duration_s, 3))


def judge(candidates: list[Candidate], config: ExecConfig) -> list[SampleResult]:
    """Verdicts for ``candidates``; those without code never reach the sandbox."""
    runnable = [c for c in candidates if c.program.strip()]
    results = run_programs([(c.program, c.task.tests, c.task.reference) for c in runnable], config) if runnable else []
    by_id = {id(c): r for c, r in zip(runnable, results, strict=True)}
    return [verdict(c, by_id.get(id(c))) for c in candidates]
