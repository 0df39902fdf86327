"""``RayExecutor``: sandbox jobs as Ray tasks on the nodes that advertise a ``sandbox`` resource.

The sandbox's only module that imports Ray (through ``import_ray``, which the other cluster paths share:
``evals/replicas.py``, ``inference/server/replicas.py``). The driver (the process that called ``run``) owns the results: a job's
result reaches the caller when its task finishes, and the caller records it. A job whose worker or node
dies is re-run by Ray up to ``max_retries`` times; past that it is reported lost (``JobsLost``), never
turned into a verdict, so a resumed run re-runs exactly the lost jobs.

Every node must have codeloop installed (``pip install 'codeloop[cluster]'``, the same version as the
driver): a task unpickles ``run_job`` by reference and runs the node's own sandbox.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sandbox.concurrent_runs import JobSpec, run_spec
from sandbox.executor_config import SANDBOX_RESOURCE, ExecutorConfig, ExecutorError, JobsLost
from sandbox.types import RunResult

CONNECT_TIMEOUT_S = 7.0
"""Joining the cluster gets this long; with ``import ray`` (2-3 s) a silent address is reported within 10 s."""
INSTALL_HINT = "pip install 'codeloop[cluster]'"
POLL_S = 5.0
NO_SANDBOX_GRACE_S = 60.0
"""How long jobs may wait while no live node advertises ``sandbox`` (all sandbox nodes died) before they are
reported lost instead of waiting forever; a node that restarts within it picks them up."""


@dataclass(frozen=True)
class Placement:
    """Where a job ran and how long it took inside its task (the rest of its wall time is Ray's)."""

    node_id: str
    task_seconds: float


def run_job(job: JobSpec, backend: str) -> tuple[RunResult, Placement]:
    """The Ray task: one job through this node's sandbox."""
    import ray

    t0 = time.perf_counter()
    result = run_spec(job, backend)
    return result, Placement(ray.get_runtime_context().get_node_id(), time.perf_counter() - t0)


def import_ray():
    """The ``ray`` module, or ``ExecutorError`` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


class RayExecutor:
    """Jobs on a Ray cluster, one ``sandbox`` resource unit each (so as many at once as the nodes advertise).

    ``placements``: index in the last ``run``'s jobs -> where it ran (for checks and the overhead benchmark)."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.ray = import_ray()
        connect(self.ray, config.ray_address)
        slots = self.ray.cluster_resources().get(SANDBOX_RESOURCE, 0)
        if slots < 1:
            raise ExecutorError(f"no node of the Ray cluster advertises a {SANDBOX_RESOURCE!r} resource: start "
                                "nodes where bwrap or Docker works with `ray start ... --resources "
                                "\"$(codeloop sandbox resources)\"`")
        self.task = self.ray.remote(num_cpus=0, resources={SANDBOX_RESOURCE: 1},
                                    max_retries=config.max_retries)(run_job)
        self.placements: dict[int, Placement] = {}

    def run(self, jobs: Sequence[JobSpec]) -> Iterator[tuple[int, RunResult]]:
        ray = self.ray
        self.placements = {}
        index = {self.task.remote(job, self.config.backend): i for i, job in enumerate(jobs)}
        pending, lost, reason = list(index), [], ""
        starved_since: float | None = None
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
                if not done:
                    if ray.cluster_resources().get(SANDBOX_RESOURCE, 0) >= 1:
                        starved_since = None
                    elif starved_since is None:
                        starved_since = time.monotonic()
                    elif time.monotonic() - starved_since > NO_SANDBOX_GRACE_S:
                        lost += [index[ref] for ref in pending]
                        reason = f"no live node has advertised {SANDBOX_RESOURCE!r} for {NO_SANDBOX_GRACE_S:.0f} s"
                        break
                    continue
                for ref in done:
                    try:
                        result, placement = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # worker or node died past the retries
                        lost.append(index[ref])
                        reason = reason or f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                        continue
                    self.placements[index[ref]] = placement
                    yield index[ref], result
        finally:
            for ref in pending:  # the caller stopped early: do not leave jobs running for nobody
                ray.cancel(ref, force=True)
        if lost:
            raise JobsLost(sorted(lost), reason)


def connect(ray, address: str | None) -> None:
    """Join the cluster at ``address`` (None: Ray's discovery) within ``CONNECT_TIMEOUT_S``, or raise a
    one-line ``ExecutorError``. Ray's own ``init`` retries a silent address for minutes, so the address is
    first dialled directly and ``init`` then gets the rest of the time in a thread."""
    if ray.is_initialized():
        return
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    if address and address != "auto":
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise ExecutorError(f"a Ray address is host:port (the head's GCS, default port 6379), not {address!r}")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S / 2):
                pass
        except OSError as exc:
            raise ExecutorError(f"the Ray cluster at {address} does not answer ({exc}); is `ray start --head` "
                                "running there, and is this its GCS host:port?") from None
    outcome: dict[str, BaseException] = {}

    def init() -> None:
        try:
            ray.init(address=address or "auto", logging_level="ERROR", log_to_driver=False)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=init, name="ray-connect", daemon=True)
    thread.start()
    thread.join(max(1.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise ExecutorError(f"the Ray cluster at {address or 'auto'} did not answer within {CONNECT_TIMEOUT_S:.0f} s")
    if "error" in outcome:
        first = str(outcome["error"]).strip().splitlines()[0][:300] if str(outcome["error"]).strip() else ""
        raise ExecutorError(f"cannot join the Ray cluster at {address or 'auto'}: "
                            f"{type(outcome['error']).__name__}: {first}")
