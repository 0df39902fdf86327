"""Evals on a real multi-node Ray cluster on this machine: a head without a sandbox resource (like a node
with neither bwrap nor Docker), a node advertising 2 sandbox slots and one advertising 2 engine slots (a
stand-in for a GPU node). Same verdicts as the local
executor; sandbox jobs land only on the sandbox node; a Ray worker or a whole node killed mid-run loses no
recorded result and counts none twice, and a resumed run re-runs only what has no result."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bench.ray_cluster import LocalRayCluster
from evals import datasets
from evals.canonical import check_canonical
from evals.execute import Candidate, ExecConfig, judge
from evals.rundir import RunDir
from evals.spec import EvalSpec
from evals.task import Task
from sandbox.executor import ExecutorConfig, JobsLost
from sandbox.types import Limits

pytestmark = [pytest.mark.slow, pytest.mark.bwrap]

REPO = Path(__file__).resolve().parents[2]
LOCAL = ExecConfig("bwrap", 2, Limits(timeout_s=60, memory_mb=1024))
"""bwrap: no warm container pool to start in every fresh Ray worker process (lighter on a loaded machine)."""
WAIT_S = 300.0
"""Generous bound on anything the tests wait for (the shared machine may be heavily loaded)."""


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    c = LocalRayCluster(env={"PYTHONPATH": str(REPO)})  # workers import this checkout's sandbox
    try:
        c.add_node(num_cpus=1, resources={}, head=True)
        c.add_node(num_cpus=1, resources={"sandbox": 2})  # a CPU node with bwrap or Docker
        c.add_node(num_cpus=1, resources={"engine": 2})  # a stand-in for a GPU node: engines, no sandbox
        ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
        yield c
    finally:
        ray.shutdown()
        c.stop()


def ray_config(c: LocalRayCluster, **kw) -> ExecConfig:
    return replace(LOCAL, executor="ray", ray_address=c.address, **kw)


def node_ids_with(resource: str) -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get(resource, 0) > 0}


def sandbox_node_ids() -> set[str]:
    return node_ids_with("sandbox")


def verdicts(results) -> list[tuple]:
    return [(r.task_id, r.sample_index, r.passed, r.status, r.tests, r.status == "sandbox_error" and r.message)
            for r in results]


def test_same_verdicts_as_local_and_only_on_sandbox_nodes(cluster):
    from sandbox.ray_executor import RayExecutor

    tasks = datasets.load("humanevalplus")[:3]
    candidates = []
    for i, t in enumerate(tasks):  # right, wrong (another task's solution) and empty candidates
        candidates += [Candidate(t, 0, "", t.canonical_solution),
                       Candidate(t, 1, "", tasks[(i + 1) % len(tasks)].canonical_solution),
                       Candidate(t, 2, "no code", "")]
    executor = RayExecutor(ray_config(cluster).executor_config())
    on_ray = judge(candidates, ray_config(cluster), executor)
    local = judge(candidates, LOCAL)
    assert verdicts(on_ray) == verdicts(local)
    assert sum(r.passed for r in local) == len(tasks) and any(r.status == "no_code" for r in local)
    nodes = {p.node_id for p in executor.placements.values()}
    assert nodes <= sandbox_node_ids() and len(executor.placements) == 2 * len(tasks)


def test_cli_canonical_same_per_task_verdicts(cluster, tmp_path):
    from codeloop.cli import main

    runs = {}
    for kind in ("local", "ray"):
        argv = ["eval", "canonical", "humanevalplus", "--limit", "3", "--json", "--timeout", "60", "--sandbox", "bwrap",
                "--run-dir", str(tmp_path / kind), "--executor", kind]
        assert main(argv + (["--ray-address", cluster.address] if kind == "ray" else [])) == 0
        lines = (tmp_path / kind / "results.jsonl").read_text().splitlines()
        runs[kind] = sorted((r["task_id"], r["passed"], r["status"], json.dumps(r["tests"]))
                            for r in map(json.loads, lines))
    assert len(runs["ray"]) == 3 and runs["ray"] == runs["local"]


def test_engine_replicas_generate_every_request_once(cluster, tmp_path, tiny_qwen2_dir):
    """Placement as docs/SCALING.md lays it out, with fake resource labels: the two engine actors land on
    the engine node only (not the sandbox node, not the head). They answer an eval (the tiny random model:
    the texts are noise); the run's identity records the replica count, so a resume with another count is
    refused (answers batch apart)."""
    from evals.benchmark_runner import evaluate
    from evals.replicas import ReplicaGenerator
    from evals.rundir import RunDirError

    spec = EvalSpec(benchmark="humaneval", model=str(tiny_qwen2_dir), limit=3, samples=2, temperature=0.8,
                    max_tokens=8, run_dir=tmp_path / "run", progress=False, engine_options={"num_threads": 1},
                    sandbox="bwrap", executor="ray", ray_address=cluster.address, engine_replicas=2)
    replicas = ReplicaGenerator(spec.model, None, spec.engine_options, 2, cluster.address)
    assert set(replicas.node_ids()) == node_ids_with("engine") and not node_ids_with("engine") & sandbox_node_ids()
    summary = evaluate(spec, generator=replicas)
    assert summary.num_results == 6
    generations = [json.loads(x) for x in (tmp_path / "run" / "generations.jsonl").read_text().splitlines()]
    assert sorted((g["task_id"], g["sample_index"]) for g in generations) == sorted(
        (f"HumanEval/{i}", s) for i in range(3) for s in range(2))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["identity"]["engine"]["engine_replicas"] == 2
    with pytest.raises(RunDirError, match="engine"):
        evaluate(replace(spec, resume=True, engine_replicas=1, executor="local", ray_address=None))


def sleepy_tasks(n: int, seconds: float) -> list[Task]:
    """Tasks whose canonical solution takes ``seconds``, so that a run is long enough to be hit mid-way."""
    solution = f"import time\ntime.sleep({seconds})\n\ndef f():\n    return 1\n"
    return [Task(f"Sleepy/{i}", "sleepy", "", "f", ("assert f() == 1",), solution) for i in range(n)]


def open_run_dir(path: Path, resume: bool = False) -> RunDir:
    rd = RunDir(path, EvalSpec("sleepy", model="canonical", run_dir=path, resume=resume))
    rd.open()
    return rd


def run_and_kill_a_worker(cluster: LocalRayCluster, tasks: list[Task], config: ExecConfig, rd: RunDir, executor):
    """Start the check in a thread; once a result is recorded, SIGKILL a worker running a job. Returns
    (the thread's outcome: report or exception, the lines recorded before the kill)."""
    outcome: dict = {}

    def check() -> None:
        try:
            outcome["report"] = check_canonical(tasks, config, progress=False, run_dir=rd, executor=executor)
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            outcome["error"] = exc

    thread = threading.Thread(target=check)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not rd.results.path.exists() or not rd.results.path.read_text().strip():
        assert time.monotonic() < deadline and thread.is_alive(), f"no result recorded: {outcome}"
        time.sleep(0.2)
    while not (workers := cluster.workers("run_job")):
        assert time.monotonic() < deadline and thread.is_alive(), f"no worker running a job: {outcome}"
        time.sleep(0.1)
    before = rd.results.path.read_text()
    workers[0].kill()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    return outcome, before


def recorded(rd: RunDir) -> list[str]:
    return [json.loads(line)["task_id"] for line in rd.results.path.read_text().splitlines()]


def test_a_lost_job_is_not_recorded_and_resume_runs_only_it(cluster, tmp_path):
    from sandbox.ray_executor import RayExecutor

    tasks = sleepy_tasks(5, 2)
    config = ray_config(cluster)
    no_retries = RayExecutor(ExecutorConfig("ray", config.backend, ray_address=cluster.address, max_retries=0))
    rd = open_run_dir(tmp_path / "run")
    outcome, before = run_and_kill_a_worker(cluster, tasks, config, rd, no_retries)
    lost = outcome.get("error")
    assert isinstance(lost, JobsLost) and len(lost.indices) == 1, outcome
    first = recorded(rd)
    assert len(first) == 4 and len(set(first)) == 4
    resumed = check_canonical(tasks, config, progress=False, run_dir=open_run_dir(tmp_path / "run", resume=True),
                              executor=RayExecutor(config.executor_config()))
    assert resumed.num_run == 1 and len(resumed.passed) == 5, resumed
    ids = recorded(rd)
    assert ids[:4] == first and sorted(ids) == sorted(t.task_id for t in tasks)
    assert rd.results.path.read_text().startswith(before)


def test_rl_task_validation_through_ray_keeps_what_local_keeps(cluster):
    from rl.config import RolloutSettings
    from rl.execution import executor_run_many
    from rl.tasks import from_mbpp, validate, wrong_solution

    tasks = from_mbpp("validation")[:4]
    broken = wrong_solution(tasks[0].reference, tasks[0].entry_point)  # returns None: fails its asserts
    tasks.append(replace(tasks[0], task_id="broken", reference=broken))
    limits = Limits(timeout_s=60, memory_mb=1024)
    on_ray = executor_run_many(RolloutSettings(sandbox="bwrap", executor="ray", ray_address=cluster.address))
    assert on_ray is not None and executor_run_many(RolloutSettings()) is None  # local: today's run_many
    kept_ray = [t.task_id for t in validate(tasks, limits, backend="bwrap", run_many=on_ray)]
    kept_local = [t.task_id for t in validate(tasks, limits, backend="bwrap")]
    assert kept_ray == kept_local and "broken" not in kept_ray and len(kept_ray) >= 3


def test_a_killed_sandbox_node_loses_no_result_and_counts_none_twice(cluster, tmp_path):
    """A further node (2 sandbox slots) is killed whole (raylet, workers) mid-run; Ray re-runs its
    jobs on the surviving sandbox node and every task is recorded exactly once."""
    from sandbox.ray_executor import RayExecutor

    doomed = cluster.add_node(num_cpus=1, resources={"sandbox": 2})
    tasks = sleepy_tasks(8, 2)
    config = ray_config(cluster)
    rd = open_run_dir(tmp_path / "run")
    outcome: dict = {}

    def check() -> None:
        try:
            outcome["report"] = check_canonical(tasks, config, progress=False, run_dir=rd,
                                                executor=RayExecutor(config.executor_config()))
        except Exception as exc:  # noqa: BLE001 - inspected below
            outcome["error"] = exc

    thread = threading.Thread(target=check)
    thread.start()
    deadline = time.monotonic() + WAIT_S

    def busy_on_doomed() -> bool:
        import psutil

        try:
            running = any(p.name() == "ray::run_job" for p in doomed.children())
        except psutil.NoSuchProcess:
            return False
        return running and bool(rd.results.load()[0])

    while not busy_on_doomed():
        assert time.monotonic() < deadline and thread.is_alive(), f"no job on the third node: {outcome}"
        time.sleep(0.1)
    before = rd.results.path.read_text()
    cluster.kill_node(doomed)
    thread.join(WAIT_S)
    assert not thread.is_alive() and "error" not in outcome, outcome
    assert outcome["report"].num_run == 8 and len(outcome["report"].passed) == 8, outcome
    assert sorted(recorded(rd)) == sorted(t.task_id for t in tasks)  # each exactly once
    assert rd.results.path.read_text().startswith(before)



def test_serve_replicas_session_affinity_failover_and_metrics(cluster, tiny_qwen2_dir):
    """`serve --replicas 2` on the cluster's engine node: a session stays on its replica; a killed replica's
    session moves to the other one, Ray replaces the replica and the session comes home; /metrics adds up."""
    import os
    import signal

    import httpx
    import ray
    import uvicorn

    from bench.ray_cluster import free_port
    from inference.affinity import affinity_index
    from inference.config import EngineConfig
    from inference.server.config import ServerConfig
    from inference.server.replicas import ReplicaSet
    from inference.server.router import REPLICA_HEADER, SESSION_HEADER, create_router

    engine = EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", max_num_seqs=8, num_threads=1)
    replicas = ReplicaSet(engine, ServerConfig(model_name="tiny"), 2, cluster.address)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_router(replicas), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    sessions = {affinity_index(f"file:///doc{i}.py", 2): f"file:///doc{i}.py" for i in range(20)}

    def complete(session: str) -> str:
        reply = httpx.post(f"{url}/v1/completions", headers={SESSION_HEADER: session}, timeout=WAIT_S,
                           json={"model": "tiny", "prompt": "def add(a, b):", "max_tokens": 4})
        assert reply.status_code == 200, reply.text
        return reply.headers[REPLICA_HEADER]

    try:
        assert [complete(sessions[0]) for _ in range(3)] == ["0"] * 3
        assert [complete(sessions[1]) for _ in range(2)] == ["1"] * 2
        metrics = httpx.get(f"{url}/metrics", timeout=WAIT_S).text
        finished = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith("codeloop_requests_total{"))
        assert finished == 5 and "codeloop_replicas_up 2" in metrics, metrics
        os.kill(ray.get(replicas.actors[0].pid.remote()), signal.SIGKILL)
        assert complete(sessions[0]) == "1"  # moved while replica 0 is down
        while replicas.urls[0] is None:  # Ray restarts the actor: a new engine on a new port
            assert time.monotonic() < deadline, "replica 0 was not replaced"
            time.sleep(0.5)
        assert complete(sessions[0]) == "0"
    finally:
        server.should_exit = True
        thread.join(30)
        for actor in replicas.actors:
            ray.kill(actor, no_restart=True)
