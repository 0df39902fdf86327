"""Sandbox execution for RL: ``run_many`` with one retry of sandbox failures, then skip (logged).

A sandbox failure (status SANDBOX_ERROR: the sandbox itself could not run the job) says nothing about the
code, so it must never become a reward: such jobs are retried once, and a job failing twice keeps its
SANDBOX_ERROR result, which callers treat as "skip".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sandbox.types import RunResult, RunStatus

log = logging.getLogger(__name__)


def executor_run_many(settings: Any) -> Callable[..., list[RunResult]] | None:
    """The ``run_many`` that ``settings`` (``RolloutSettings``) asks for: None (this machine's, unchanged) for
    the local executor, else one over the Ray cluster (``sandbox.executor.run_many_on``)."""
    if settings.executor == "local":
        return None
    from sandbox.executor import ExecutorConfig, run_many_on

    return run_many_on(ExecutorConfig(settings.executor, settings.sandbox, settings.concurrency, settings.ray_address))


def run_with_retry(jobs: Sequence[object], *, concurrency: int = 2, backend: str = "auto",
                   run_many: Callable[..., list[RunResult]] | None = None) -> list[RunResult]:
    """Results in job order; SANDBOX_ERROR jobs are run a second time, and still failing ones logged."""
    if run_many is None:
        from sandbox.concurrent_runs import run_many
    jobs = list(jobs)
    if not jobs:
        return []
    results = list(run_many(jobs, concurrency=concurrency, progress=False, backend=backend))
    failed = [i for i, r in enumerate(results) if r.status is RunStatus.SANDBOX_ERROR]
    if failed:
        log.warning("sandbox failed on %d of %d jobs; retrying them once", len(failed), len(jobs))
        again = run_many([jobs[i] for i in failed], concurrency=concurrency, progress=False, backend=backend)
        for i, result in zip(failed, again, strict=True):
            results[i] = result
        still = [i for i in failed if results[i].status is RunStatus.SANDBOX_ERROR]
        if still:
            log.warning("sandbox failed twice on %d jobs; they are skipped: %s", len(still),
                        results[still[0]].message)
    return results
