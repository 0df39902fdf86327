"""``codeloop bench sandbox``: throughput of HumanEval-sized checks per backend (JSON out).

Compares, at the same concurrency and on the same machine, side by side: the warm Docker pool
(job server), the warm pool with an exec per job, Docker cold (a container per job), bubblewrap,
and the unisolated subprocess reference.
Targets (issue #4): docker pool >= 5x docker cold; bwrap overhead <= 3x unisolated.
"""

from __future__ import annotations

import gzip
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.job import Job, make_job
from sandbox.job_runner import create_backend
from sandbox.types import Limits, RunStatus

HUMANEVAL = Path(__file__).resolve().parents[2] / "shared/benchmarks/humaneval/HumanEval.jsonl.gz"
FALLBACK_CODE = "def add(a, b):\n    return a + b\n"
FALLBACK_TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n\ncheck(add)\n"


@dataclass(frozen=True)
class BenchConfig:
    jobs: int = 40
    cold_jobs: int = 8
    concurrency: int = 2
    backends: tuple[str, ...] = ("docker", "docker-exec", "docker-cold", "bwrap", "unsafe_subprocess")
    humaneval: Path = HUMANEVAL


def humaneval_jobs(path: Path, count: int) -> list[Job]:
    """The first ``count`` HumanEval canonical solutions with their checks (or a stand-in)."""
    problems = []
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            problems = [json.loads(line) for line in itertools.islice(f, count)]
    jobs = []
    for i in range(count):
        if problems:
            p = problems[i % len(problems)]
            job = make_job(p["prompt"] + p["canonical_solution"], p["test"] + f"\ncheck({p['entry_point']})\n",
                           Limits(timeout_s=20))
        else:
            job = make_job(FALLBACK_CODE, FALLBACK_TESTS, Limits(timeout_s=20))
        assert isinstance(job, Job)
        jobs.append(job)
    return jobs


def measure(backend: str, jobs: list[Job], concurrency: int) -> dict:
    """Runs/second of ``jobs`` on a private backend instance (a pool is warmed first)."""
    from concurrent.futures import ThreadPoolExecutor

    instance = create_backend(backend)
    try:
        warm = getattr(instance, "warm", None)
        if warm:
            warm(jobs[0].limits, concurrency)
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(instance.execute, jobs))
        elapsed = time.monotonic() - start
    finally:
        close = getattr(instance, "close", None)
        if close:
            close()
    passed = sum(r.status is RunStatus.PASSED for r in results)
    statuses = sorted({r.status.value for r in results})
    return {"jobs": len(jobs), "passed": passed, "statuses": statuses, "seconds": round(elapsed, 3),
            "runs_per_s": round(len(jobs) / elapsed, 2) if elapsed > 0 else None}


def bench_sandbox(config: BenchConfig | object | None = None) -> dict:
    """Measure every backend in ``config.backends`` that can run here; add ratios and targets.
    ``config`` may also be the argparse namespace of ``codeloop bench sandbox``."""
    if not isinstance(config, BenchConfig):
        config = config_from_args(config)
    out: dict = {"workload": "HumanEval canonical solution + check", "concurrency": config.concurrency,
                 "backends": {}}
    for name in config.backends:
        count = config.cold_jobs if name == "docker-cold" else config.jobs
        problem = _unavailable(name)
        if problem:
            out["backends"][name] = {"skipped": problem}
            continue
        out["backends"][name] = measure(name, humaneval_jobs(config.humaneval, count), config.concurrency)
    rate = {k: v.get("runs_per_s") for k, v in out["backends"].items()}
    if rate.get("docker") and rate.get("docker-cold"):
        out["docker_pool_vs_cold"] = round(rate["docker"] / rate["docker-cold"], 2)
        out["target_pool_ge_5x_cold"] = out["docker_pool_vs_cold"] >= 5
    if rate.get("docker-exec") and rate.get("docker-cold"):
        out["docker_exec_pool_vs_cold"] = round(rate["docker-exec"] / rate["docker-cold"], 2)
    if rate.get("bwrap") and rate.get("unsafe_subprocess"):
        out["bwrap_overhead_vs_unisolated"] = round(rate["unsafe_subprocess"] / rate["bwrap"], 2)
        out["target_bwrap_le_3x"] = out["bwrap_overhead_vs_unisolated"] <= 3
    return out


def config_from_args(args: object | None) -> BenchConfig:
    """BenchConfig from ``--jobs/--cold-jobs/--concurrency/--backends`` (missing ones: defaults)."""
    default = BenchConfig()
    backends = getattr(args, "backends", None)
    if isinstance(backends, str):
        backends = tuple(b.strip() for b in backends.split(",") if b.strip())
    return BenchConfig(jobs=getattr(args, "jobs", default.jobs), cold_jobs=getattr(args, "cold_jobs", default.cold_jobs),
                       concurrency=getattr(args, "concurrency", default.concurrency),
                       backends=tuple(backends or default.backends))


def _unavailable(name: str) -> str | None:
    if name.startswith("docker"):
        from sandbox.pool import DockerBackend

        return DockerBackend(pooled=False).ready()
    if name == "bwrap":
        from sandbox.bwrap import available

        return available()
    return None
