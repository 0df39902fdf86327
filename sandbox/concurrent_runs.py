"""``run_many``: many jobs over a thread pool (each job's child is a separate process/container).

Never raises for one bad job: its slot holds a SANDBOX_ERROR (or ERROR for bad input) result.
Results come back in the order of ``jobs``; ``iter_many`` yields them as each finishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from sandbox.job_runner import run
from sandbox.types import Limits, RunResult, RunStatus


@dataclass(frozen=True)
class JobSpec:
    """One entry of ``run_many``: the same arguments as ``run``."""

    code: str | bytes
    tests: str | Sequence[str] = ""
    limits: Limits = field(default_factory=Limits)
    reference: str = ""
    """See ``sandbox.job.Job.reference``."""


def _spec(job: object) -> JobSpec:
    if isinstance(job, JobSpec):
        return job
    if isinstance(job, dict):
        return JobSpec(job.get("code", ""), job.get("tests", ""), job.get("limits") or Limits(), job.get("reference", ""))
    if isinstance(job, (tuple, list)) and 1 <= len(job) <= 3:
        return JobSpec(*job)
    raise TypeError(f"a job is a JobSpec, a dict or a (code, tests[, limits]) tuple, not {type(job).__name__}")


def run_spec(job: object, backend: str) -> RunResult:
    """``run`` for one job of ``run_many`` (a JobSpec, dict or tuple); never raises."""
    try:
        spec = _spec(job)
        return run(spec.code, spec.tests, spec.limits, backend=backend, reference=spec.reference)
    except Exception as exc:  # noqa: BLE001 - one bad job must not sink the batch
        return RunResult(status=RunStatus.SANDBOX_ERROR, message=f"bad job: {type(exc).__name__}: {exc}")


def run_many(jobs: Iterable[object], concurrency: int = 2, progress: bool = True,
             backend: str = "auto", description: str = "sandbox") -> list[RunResult]:
    """Run every job with at most ``concurrency`` at once; a rich progress bar when ``progress``."""
    jobs = list(jobs)
    results: list[RunResult | None] = [None] * len(jobs)
    for i, result in iter_many(jobs, concurrency, progress, backend, description):
        results[i] = result
    return [r if r is not None else RunResult(status=RunStatus.SANDBOX_ERROR, message="lost") for r in results]


def iter_many(jobs: Sequence[object], concurrency: int = 2, progress: bool = False, backend: str = "auto",
              description: str = "sandbox") -> Iterator[tuple[int, RunResult]]:
    """``(index in jobs, result)`` of every job, in the order they finish, at most ``concurrency`` at once."""
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(run_spec, job, backend): i for i, job in enumerate(jobs)}
        yield from _track(futures, progress, description, len(jobs))


def _track(futures, progress: bool, description: str, total: int):
    if not progress:
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=total)
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
            bar.advance(task)
