"""Sandbox runs of check jobs, off the event loop.

Invariants: at most ``max_parallel`` sandbox runs at once (the machine's cores are also the engine's);
a run that has not started when its request is cancelled never starts; a run never blocks the event
loop and always ends (the sandbox's parent-side wall clock); nothing runs unsandboxed: without a
usable backend the executor refuses (``problem``), it never falls back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from lsp.checks.check import Check
from lsp.checks.job import CheckJob
from lsp.checks.verdict import Verdict, check_failed, read_verdict
from sandbox.types import Limits

logger = logging.getLogger(__name__)
BACKENDS = ("auto", "bwrap", "docker")
CHECK_LIMITS = Limits(timeout_s=5.0, memory_mb=512, pids=64, cpus=1.0)
"""Per candidate run: a hung or runaway candidate costs at most this, in the background."""
PROBE_TTL_S = 60.0


def choose_backend(requested: str = "auto") -> tuple[str | None, str]:
    """(sandbox backend, why) for the ``check.backend`` setting: bwrap where it works (fastest, ~30 ms
    a run), else the warm Docker pool; (None, why not) when neither is usable."""
    from sandbox.bwrap import available
    from sandbox.job_runner import get_backend

    if requested not in BACKENDS:
        return None, f"unknown check backend {requested!r} (one of {', '.join(BACKENDS)})"
    bwrap_problem = available() if requested in ("auto", "bwrap") else "not requested"
    if bwrap_problem is None:
        return "bwrap", "bubblewrap is available"
    if requested == "bwrap":
        return None, f"bwrap: {bwrap_problem}"
    docker_problem = get_backend("docker").ready()  # type: ignore[attr-defined]
    if docker_problem is None:
        return "docker", f"the Docker daemon answers (bwrap: {bwrap_problem})"
    return None, f"no sandbox: bwrap: {bwrap_problem}; docker: {docker_problem}"


class CheckExecutor:
    """Runs check jobs on one sandbox backend through a small thread pool."""

    def __init__(self, requested: str = "auto", max_parallel: int = 2, limits: Limits = CHECK_LIMITS) -> None:
        self.requested = requested
        self.limits = limits
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="codeloop-check")
        self._probe: tuple[float, str | None, str] = (-PROBE_TTL_S, None, "")
        self.num_runs = 0
        self.run_ms: list[float] = []

    def backend(self) -> tuple[str | None, str]:
        """The backend in use (re-probed at most every PROBE_TTL_S)."""
        at, name, why = self._probe
        if time.monotonic() - at > PROBE_TTL_S:
            name, why = choose_backend(self.requested)
            self._probe = (time.monotonic(), name, why)
        return name, why

    async def run(self, job: CheckJob, checks: Sequence[Check]) -> Verdict:
        """The verdict of one candidate; cancelling the caller drops the run if it has not started."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run_blocking, job, tuple(checks))

    def _run_blocking(self, job: CheckJob, checks: tuple[Check, ...]) -> Verdict:
        from sandbox.job_runner import run

        name, why = self.backend()
        if name is None:
            return check_failed(f"no sandbox ({why})", checks)
        start = time.perf_counter()
        result = run(job.code, list(job.tests), self.limits, backend=name, mounts=job.mounts)
        self.num_runs += 1
        self.run_ms.append((time.perf_counter() - start) * 1000)
        del self.run_ms[:-1000]
        return read_verdict(result, checks)

    async def run_suite(self, suite: object, document: str, checks: Sequence[Check]) -> Verdict:
        """The verdict of the repository's own tests (SUITE checks) on ``document``, off the event loop."""
        from lsp.checks.suite_checks import run_suite

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, run_suite, suite, document, list(checks))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
