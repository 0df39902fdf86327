"""``run``: one job through a chosen backend, never raising and never hanging the caller.

Backends: ``docker`` (warm container pool, a fork of the in-container job server per job),
``docker-exec`` (warm pool, one ``docker exec`` per job), ``docker-cold`` (a container per job), ``bwrap``
(bubblewrap), ``unsafe_subprocess`` (no isolation; overhead reference only) and ``auto``, which
picks docker when the daemon answers and the image exists, else bwrap, and otherwise refuses
(status SANDBOX_ERROR): it never falls back to running code unisolated.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from sandbox.job import Job, make_job
from sandbox.types import Limits, Mount, RunResult, RunStatus

BACKENDS = ("auto", "docker", "docker-exec", "docker-cold", "bwrap", "unsafe_subprocess")
AUTO_TTL_S = 30.0


class Backend(Protocol):
    name: str

    def execute(self, job: Job) -> RunResult: ...


_lock = threading.Lock()
_instances: dict[str, Backend] = {}
_auto: tuple[float, str | None, str] = (0.0, None, "")


def get_backend(name: str) -> Backend:
    """The shared instance of a concrete backend (created on first use)."""
    with _lock:
        if name not in _instances:
            _instances[name] = create_backend(name)
        return _instances[name]


def create_backend(name: str) -> Backend:
    """A new, private instance of a concrete backend (the caller closes it, if it has ``close``)."""
    if name in ("docker", "docker-exec", "docker-cold"):
        from sandbox.container import DockerConfig
        from sandbox.pool import DockerBackend

        return DockerBackend(DockerConfig(server=name == "docker"), pooled=name != "docker-cold")
    if name == "bwrap":
        from sandbox.bwrap import BwrapBackend

        return BwrapBackend()
    if name == "unsafe_subprocess":
        from sandbox.unsafe import UnsafeSubprocessBackend

        return UnsafeSubprocessBackend()
    raise ValueError(f"unknown sandbox backend {name!r}; choose one of {', '.join(BACKENDS)}")


def resolve_backend(name: str = "auto") -> tuple[str | None, str]:
    """(backend name, why) for a requested name; (None, why not) when auto finds nothing safe."""
    global _auto
    if name != "auto":
        if name not in BACKENDS:
            raise ValueError(f"unknown sandbox backend {name!r}; choose one of {', '.join(BACKENDS)}")
        return name, "requested"
    checked_at, chosen, why = _auto
    if time.monotonic() - checked_at < AUTO_TTL_S:
        return chosen, why
    from sandbox.bwrap import available

    docker_problem = get_backend("docker").ready()  # type: ignore[attr-defined]
    if docker_problem is None:
        chosen, why = "docker", "the Docker daemon answers"
    elif available() is None:
        chosen, why = "bwrap", f"docker unusable ({docker_problem})"
    else:
        chosen, why = None, f"no isolating backend: docker: {docker_problem}; bwrap: {available()}"
    _auto = (time.monotonic(), chosen, why)
    return chosen, why


def run(code: str | bytes, tests: str | Sequence[str] | None = "", limits: Limits | None = None,
        backend: str = "auto", mounts: Sequence[Mount] = (), reference: str | bytes = "") -> RunResult:
    """Run ``code`` then ``tests`` (assert code, split per top-level assert, or a list of snippets)
    in a sandbox, with ``mounts`` visible read-only. Never raises for bad input or a bad run: the
    status and message say what happened; SANDBOX_ERROR means the sandbox itself could not run the job.
    ``reference``: see ``Job.reference`` (differential tests)."""
    job = make_job(code, tests, limits, mounts, reference)
    if isinstance(job, RunResult):
        return job
    try:
        name, why = resolve_backend(backend)
        if name is None:
            return RunResult(status=RunStatus.SANDBOX_ERROR, message=why)
        return get_backend(name).execute(job)
    except Exception as exc:  # noqa: BLE001 - the caller must get a result, not an exception
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return RunResult(status=RunStatus.SANDBOX_ERROR, backend=backend,
                         message=f"sandbox failure: {type(exc).__name__}: {exc} "
                                 f"(at {Path(where.filename).name}:{where.lineno} in {where.name})")

