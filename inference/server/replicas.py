"""``codeloop serve --replicas N``: N copies of the server, each a Ray actor that owns one engine and serves
the usual app on a port of its node, behind one router (``router.py``).

A replica actor is restarted by Ray when its process or node dies (``max_restarts=-1``); the new one loads
its engine again and serves on a new port, which ``ReplicaSet.refresh`` picks up. Ray is imported only
when a ``ReplicaSet`` is made.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from inference.affinity import affinity_index

ENGINE_RESOURCE = "engine"
"""The Ray resource a node advertises once per engine it can hold (e.g. one per GPU); every serving or eval
engine replica asks for one unit."""


class ServeReplica:
    """The Ray actor: the server app around one engine, on ``0.0.0.0:<free port>`` of its node."""

    def __init__(self, engine_config: Any, server_config: Any) -> None:
        from dataclasses import replace

        from inference.server.backend import EngineBackend
        from inference.server.uvicorn_runner import ThreadedServer

        backend = EngineBackend.from_config(engine_config)
        backend.async_engine.engine.prepare_healing()
        self.server = ThreadedServer(backend, replace(server_config, host="0.0.0.0", port=0))
        self.server.__enter__()
        import ray

        self.host = ray.util.get_node_ip_address()

    def url(self) -> str:
        return f"http://{self.host}:{self.server.port}"

    def pid(self) -> int:
        import os

        return os.getpid()


class ReplicaSet:
    """The replicas and their current URLs; a replica marked down is skipped until ``refresh`` sees it back."""

    def __init__(self, engine_config: Any, server_config: Any, num_replicas: int, ray_address: str | None) -> None:
        from sandbox.executor_config import ExecutorError
        from sandbox.ray_executor import connect, import_ray

        self.ray = import_ray()
        connect(self.ray, ray_address)
        have = self.ray.cluster_resources().get(ENGINE_RESOURCE, 0)
        if have < num_replicas:
            raise ExecutorError(f"{num_replicas} replicas need {num_replicas} units of the {ENGINE_RESOURCE!r} "
                                f"resource; the cluster advertises {have:g}")
        actor = self.ray.remote(num_cpus=0, resources={ENGINE_RESOURCE: 1}, max_restarts=-1,
                                max_task_retries=-1)(ServeReplica)
        self.actors = [actor.remote(engine_config, server_config) for _ in range(num_replicas)]
        self.urls: list[str | None] = self.ray.get([a.url.remote() for a in self.actors])
        self._lock = threading.Lock()

    def pick(self, key: str) -> tuple[int, str] | None:
        """(index, url) of the replica for ``key``: its own, else the next one up (its session moves)."""
        n = len(self.actors)
        home = affinity_index(key, n)
        for step in range(n):
            i = (home + step) % n
            url = self.urls[i]
            if url is not None:
                return i, url
        return None

    def mark_down(self, index: int) -> None:
        """Skip ``index`` and wait in the background for Ray to bring it back (a new process, a new URL)."""
        with self._lock:
            if self.urls[index] is None:
                return
            self.urls[index] = None
        threading.Thread(target=self.refresh, args=(index,), daemon=True).start()

    def refresh(self, index: int) -> None:
        try:
            url = self.ray.get(self.actors[index].url.remote())
        except Exception:  # noqa: BLE001 - stays down; the next failure tries again
            return
        if _answers(url):
            self.urls[index] = url


def _answers(url: str) -> bool:
    host, _, port = url.removeprefix("http://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except OSError:
        return False
