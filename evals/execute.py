"""Running candidate programs through the sandbox (the only module that talks to it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from evals.results import SampleResult
from evals.task import Task
from sandbox.concurrent_runs import JobSpec
from sandbox.executor import Executor, ExecutorConfig, make_executor
from sandbox.types import Limits, RunResult, RunStatus, TestStatus

NO_CODE = "no_code"


@dataclass(frozen=True)
class ExecConfig:
    """How candidate programs run: sandbox backend, runs at once, per-run limits, and where (``executor``)."""

    backend: str = "auto"
    concurrency: int = 2
    limits: Limits = field(default_factory=Limits)
    executor: str = "local"
    """``local`` (this machine) or ``ray`` (the cluster at ``ray_address``): see ``sandbox.executor``."""
    ray_address: str | None = None

    def executor_config(self) -> ExecutorConfig:
        return ExecutorConfig(self.executor, self.backend, self.concurrency, self.ray_address)


@dataclass(frozen=True)
class Candidate:
    """One program to judge for one (task, sample)."""

    task: Task
    sample_index: int
    completion: str
    program: str
    num_generated_tokens: int = 0
    message: str = ""


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


def judge_each(candidates: list[Candidate], config: ExecConfig,
               executor: Executor | None = None) -> Iterator[tuple[int, SampleResult]]:
    """``(index in candidates, verdict)`` as each verdict exists: those without code first (they never reach
    the sandbox), then the others as their runs finish on ``executor`` (default: the one ``config`` names).
    Ends with ``sandbox.executor.JobsLost`` when jobs got no result (the verdicts yielded before stand)."""
    runnable = [i for i, c in enumerate(candidates) if c.program.strip()]
    for i, c in enumerate(candidates):
        if not c.program.strip():
            yield i, verdict(c, None)
    if not runnable:
        return
    jobs = [JobSpec(c.program, list(c.task.tests), config.limits, c.task.reference)
            for c in (candidates[i] for i in runnable)]
    executor = executor or make_executor(config.executor_config())
    for j, result in executor.run(jobs):
        yield runnable[j], verdict(candidates[runnable[j]], result)


def judge(candidates: list[Candidate], config: ExecConfig, executor: Executor | None = None) -> list[SampleResult]:
    """Verdicts for ``candidates``, in their order."""
    verdicts: dict[int, SampleResult] = dict(judge_each(candidates, config, executor))
    return [verdicts[i] for i in range(len(candidates))]
