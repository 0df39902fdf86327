"""codeloop sandbox: run untrusted code against tests in isolation (docker | bwrap backends).

``run(code, tests, limits, backend="auto", mounts=()) -> RunResult`` and ``run_many(jobs, concurrency)``.
Names are imported lazily so that ``import sandbox`` stays cheap (no docker SDK, no rich).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "types": ["Limits", "Mount", "RunResult", "RunStatus", "TestOutcome", "TestStatus"],
    "job_runner": ["run"],
    "concurrent_runs": ["run_many", "JobSpec"],
})
