"""``codeloop bench executor``: what the Ray executor costs per sandbox job, and 2 sandbox nodes vs 1.

On a real Ray cluster started on this machine (``bench/ray_cluster.py``: a head without a sandbox and one,
then two, nodes with one ``sandbox`` slot each), the same HumanEval+ canonical jobs run:

- ``local_1``: this machine's executor, one at a time; ``ray_1``: one sandbox node, one slot, so one at a
  time too. Ray's overhead per job = ray_1's wall minus the seconds its jobs spent inside their tasks,
  per job (``Placement.task_seconds``; the same run, so machine load cancels), and, more noisily, the
  per-job wall difference ray_1 - local_1.
- ``local_2`` vs ``ray_2``: two at a time (two threads; two nodes): the 2-node throughput.

Every phase runs warm-up jobs first, so worker start-up (reported apart, ``ray_cold_s``) is not counted.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.output import machine_info
from bench.ray_cluster import LocalRayCluster
from evals import datasets
from sandbox.concurrent_runs import JobSpec
from sandbox.executor import ExecutorConfig, LocalExecutor
from sandbox.types import Limits, RunStatus

REPO = Path(__file__).resolve().parents[1]
WARMUP_JOBS = 2


@dataclass(frozen=True)
class ExecutorBenchConfig:
    jobs: int = 24
    backend: str = "bwrap"


def canonical_jobs(count: int) -> list[JobSpec]:
    """HumanEval+ canonical solutions with their base and plus checks (differential, as an eval runs them)."""
    tasks = datasets.load("humanevalplus")[:count]
    return [JobSpec(t.canonical_solution, list(t.tests), Limits(timeout_s=60, memory_mb=1024), t.reference)
            for t in tasks]


def _timed(executor, jobs: list[JobSpec]) -> tuple[float, int]:
    """Wall seconds for all of ``jobs`` and how many passed."""
    t0 = time.perf_counter()
    passed = sum(r.status is RunStatus.PASSED for _, r in executor.run(jobs))
    return time.perf_counter() - t0, passed


def _phase(name: str, executor, jobs: list[JobSpec], warmup: list[JobSpec]) -> dict:
    list(executor.run(warmup))
    wall, passed = _timed(executor, jobs)
    row = {"phase": name, "jobs": len(jobs), "passed": passed, "wall_s": round(wall, 3),
           "per_job_ms": round(1000 * wall / len(jobs), 1), "jobs_per_s": round(len(jobs) / wall, 2)}
    placements = getattr(executor, "placements", None)
    if placements:
        inside = [p.task_seconds for p in placements.values()]
        row["in_task_s"] = round(sum(inside), 3)
        row["median_in_task_ms"] = round(1000 * statistics.median(inside), 1)
    return row


def bench_executors(config: ExecutorBenchConfig) -> dict:
    import ray

    from sandbox.ray_executor import RayExecutor

    jobs = canonical_jobs(config.jobs)
    warmup = canonical_jobs(WARMUP_JOBS)
    rows = [_phase("local_1", LocalExecutor(ExecutorConfig(backend=config.backend, concurrency=1)), jobs, warmup)]
    rows.append(_phase("local_2", LocalExecutor(ExecutorConfig(backend=config.backend, concurrency=2)), jobs, warmup))
    cluster = LocalRayCluster(env={"PYTHONPATH": str(REPO)})
    try:
        t0 = time.perf_counter()
        cluster.add_node(num_cpus=1, resources={}, head=True)
        cluster.add_node(num_cpus=1, resources={"sandbox": 1})
        start_s = time.perf_counter() - t0
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        executor = RayExecutor(ExecutorConfig("ray", config.backend, ray_address=cluster.address))
        t0 = time.perf_counter()
        list(executor.run(warmup[:1]))
        cold_s = time.perf_counter() - t0
        rows.append(_phase("ray_1", executor, jobs, warmup))
        cluster.add_node(num_cpus=1, resources={"sandbox": 1})
        rows.append(_phase("ray_2", executor, jobs, warmup + warmup))
    finally:
        ray.shutdown()
        cluster.stop()
    by = {r["phase"]: r for r in rows}
    ray_1 = by["ray_1"]
    return {
        "benchmark": "executor", "backend": config.backend, "machine": machine_info(), "phases": rows,
        "ray_overhead_ms_per_job": round(1000 * (ray_1["wall_s"] - ray_1["in_task_s"]) / ray_1["jobs"], 1),
        "ray_minus_local_ms_per_job": round(ray_1["per_job_ms"] - by["local_1"]["per_job_ms"], 1),
        "two_nodes_over_one": round(by["ray_2"]["jobs_per_s"] / ray_1["jobs_per_s"], 2),
        "cluster_start_s": round(start_s, 1), "ray_cold_s": round(cold_s, 2),
    }
