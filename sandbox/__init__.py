"""codeloop sandbox: run untrusted code against tests in isolation (docker | bwrap backends).

``run(code, tests, limits, backend="auto", mounts=()) -> RunResult`` and ``run_many(jobs, concurrency)``.
Names are imported lazily so that ``import sandbox`` stays cheap (no docker SDK, no rich).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Limits", "Mount", "RunResult", "RunStatus", "TestOutcome", "TestStatus", "run", "run_many", "JobSpec"]

_WHERE = {
    "Limits": "sandbox.types", "Mount": "sandbox.types", "RunResult": "sandbox.types", "RunStatus": "sandbox.types",
    "TestOutcome": "sandbox.types", "TestStatus": "sandbox.types",
    "run": "sandbox.job_runner", "run_many": "sandbox.concurrent_runs", "JobSpec": "sandbox.concurrent_runs",
}

if TYPE_CHECKING:
    from sandbox.concurrent_runs import JobSpec, run_many
    from sandbox.job_runner import run
    from sandbox.types import Limits, Mount, RunResult, RunStatus, TestOutcome, TestStatus


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
