"""A real multi-node Ray cluster on this machine, for tests and measurements: ``ray start --head`` plus
more ``ray start --address`` nodes, each with its own resources, in a private temp dir on free ports.

``stop()`` ends exactly the processes this cluster started (found by its temp dir and GCS port), never
``ray stop``, which would end every Ray process of the user on the machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
OBJECT_STORE_BYTES = 100 * 1024 * 1024
START_TIMEOUT_S = 240.0
"""``ray start`` takes ~12 s on an idle 2-core machine; far more under the shared test load."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalRayCluster:
    """Nodes of one Ray cluster on this machine. ``resources`` of each node: ``{"sandbox": 2}`` etc."""

    temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp")))
    gcs_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of every node (and so of its workers), e.g. ``PYTHONPATH`` of a checkout."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def add_node(self, num_cpus: int, resources: dict[str, float], head: bool = False):
        """Start one node (the first must be the head), wait until ``ray start`` returns, and return the
        node's raylet process (``kill_node`` takes it)."""
        before = {p.pid for p in self.raylets()}
        args = [str(RAY), "start", f"--num-cpus={num_cpus}", f"--resources={json.dumps(resources)}",
                f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats",
                "--node-ip-address=127.0.0.1", f"--dashboard-agent-listen-port={free_port()}",
                f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]
        if head:
            args += ["--head", f"--port={self.gcs_port}", f"--temp-dir={self.temp_dir}",
                     "--include-dashboard=false", f"--dashboard-port={free_port()}",
                     f"--ray-client-server-port={free_port()}"]
        else:
            args += [f"--address={self.address}"]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **self.env}
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"ray start failed ({done.returncode}): {done.stderr[-2000:]}")
        (raylet,) = [p for p in self.raylets() if p.pid not in before]
        return raylet

    def raylets(self) -> list:
        """The raylet process of each live node (one per node)."""
        import psutil

        out = []
        for p in self.processes():
            try:
                if p.name() == "raylet":
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    def kill_node(self, raylet) -> None:
        """SIGKILL a node's raylet and everything it started (its workers and agents): the node dies."""
        import psutil

        try:
            procs = [raylet, *raylet.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        _kill_and_reap(procs)

    def processes(self) -> list:
        """Every live process of this cluster (GCS, raylets, agents, workers)."""
        import psutil

        marks = (str(self.temp_dir), f":{self.gcs_port}")
        roots = []
        for p in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(p.info["cmdline"] or [])
            if any(m in cmdline for m in marks):
                roots.append(p)
        found = {p.pid: p for p in roots}
        for p in roots:
            try:
                found.update({c.pid: c for c in p.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        return list(found.values())

    def workers(self, function_name: str) -> list:
        """Worker processes now running a task of ``function_name`` (Ray titles them ``ray::<name>``)."""
        import psutil

        out = []
        for p in self.processes():
            try:
                if p.cmdline()[:1] == [f"ray::{function_name}"] or p.name() == f"ray::{function_name}":
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    def stop(self) -> None:
        _kill_and_reap(self.processes())
        subprocess.run(["rm", "-rf", str(self.temp_dir)], check=False)


def _kill_and_reap(procs: list) -> None:
    """SIGKILL each psutil process (those already gone are skipped) and wait for them (30 s at most)."""
    import psutil

    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)
