"""Where sandbox jobs run: ``make_executor(config).run(jobs)`` yields ``(index, RunResult)`` as each job
finishes, so the caller (the driver) can record every result the moment it exists.

``local``: this machine's thread pool (``iter_many``, the path ``run_many`` always took). ``ray``: Ray tasks
on the cluster nodes that advertise a ``sandbox`` resource (``sandbox/ray_executor.py``, the sandbox's only
module that imports Ray; the default path never does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from sandbox.concurrent_runs import JobSpec, iter_many
from sandbox.executor_config import EXECUTORS, SANDBOX_RESOURCE, ExecutorConfig, ExecutorError, JobsLost
from sandbox.types import RunResult, RunStatus

__all__ = ["EXECUTORS", "SANDBOX_RESOURCE", "Executor", "ExecutorConfig", "ExecutorError", "JobsLost", "LocalExecutor",
           "make_executor", "node_resources", "run_many_on"]

class Executor(Protocol):
    def run(self, jobs: Sequence[JobSpec]) -> Iterator[tuple[int, RunResult]]:
        """``(index in jobs, result)`` in the order jobs finish; may end by raising ``JobsLost``."""
        ...


class LocalExecutor:
    """Jobs on this machine, ``concurrency`` at once."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config

    def run(self, jobs: Sequence[JobSpec]) -> Iterator[tuple[int, RunResult]]:
        return iter_many(jobs, self.config.concurrency, backend=self.config.backend)


def make_executor(config: ExecutorConfig) -> Executor:
    """The executor ``config`` asks for; raises ``ExecutorError`` when it cannot run jobs at all."""
    if config.kind == "local":
        return LocalExecutor(config)
    from sandbox.ray_executor import RayExecutor

    return RayExecutor(config)


def run_many_on(config: ExecutorConfig) -> Callable[..., list[RunResult]]:
    """A ``run_many``-shaped function (results in job order) over ``config``'s executor, for callers that take
    one (the RL loop). The executor is made here, so a bad cluster fails at once. A lost job becomes a
    SANDBOX_ERROR result: it says nothing about the code, and those callers retry it, then skip it."""
    executor = make_executor(config)

    def run_many(jobs: Sequence[object], concurrency: int = 2, progress: bool = False,
                 backend: str = "auto") -> list[RunResult]:
        jobs = list(jobs)
        results: list[RunResult | None] = [None] * len(jobs)
        why = "lost"
        try:
            for i, result in executor.run(jobs):  # type: ignore[arg-type]
                results[i] = result
        except JobsLost as exc:
            why = str(exc)
        return [r or RunResult(status=RunStatus.SANDBOX_ERROR, message=why) for r in results]

    return run_many


def node_resources(slots: int) -> dict[str, int]:
    """What a Ray node on this machine advertises: ``slots`` sandbox runs when bwrap or Docker works here,
    else nothing (``ray start --resources "$(codeloop sandbox resources)"``)."""
    from sandbox.job_runner import resolve_backend

    name, _ = resolve_backend("auto")
    return {SANDBOX_RESOURCE: slots} if name is not None else {}
