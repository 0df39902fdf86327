"""Docker backends: a warm pool of sandbox containers whose job server forks per job
(``docker``), the same pool with one ``docker exec`` per job (``docker-exec``), and one container
per job (``docker-cold``, the reference the pools are measured against).

Pool invariants: a container serves one job at a time; it goes back to the idle list only after a
healthy run (see Container.execute) and fewer than ``recycle_after`` runs; every container this
process started is removed by ``close`` (also at interpreter exit), and containers left by a
process that died are removed when the next backend starts.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
import uuid

from sandbox.container import LABEL, OWNER_LABEL, Container, DockerConfig
from sandbox.job import Job, unreadable_mount
from sandbox.types import Limits, Mount, RunResult, RunStatus

NAME, EXEC_NAME, COLD_NAME = "docker", "docker-exec", "docker-cold"
PoolKey = tuple[int, int, float, int, tuple[Mount, ...]]
READY_TTL_S = 30.0


def client():
    """A Docker client, or None when no daemon answers."""
    try:
        import docker

        c = docker.from_env(timeout=30)
        c.ping()
        return c
    except Exception:  # noqa: BLE001 - any failure means "no usable daemon"
        return None


def image_present(c, image: str) -> bool:
    try:
        c.images.get(image)
        return True
    except Exception:  # noqa: BLE001
        return False


def remove_orphans(c) -> int:
    """Remove sandbox containers whose owning process (on this host) is gone."""
    import docker.errors

    removed = 0
    host = socket.gethostname()
    # NOTE: the low-level listing returns labels without inspecting each container: a container removed
    # by its owner between listing and inspecting must not fail the caller (the high-level list() raises).
    for row in c.api.containers(all=True, filters={"label": LABEL}):
        owner = (row.get("Labels") or {}).get(OWNER_LABEL, "")
        name, _, pid = owner.rpartition(":")
        if name == host and pid.isdigit() and _alive(int(pid)):
            continue
        try:
            c.api.remove_container(row["Id"], force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # another process's sweep is removing it right now
                continue
            raise
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class _Pool:
    """Idle warm containers for one set of container-level limits and mounts."""

    def __init__(self, backend: DockerBackend, limits: Limits, mounts: tuple[Mount, ...] = ()) -> None:
        self.backend, self.limits, self.mounts = backend, limits, mounts
        self.idle: list[Container] = []

    def acquire(self) -> Container:
        with self.backend.lock:
            if self.idle:
                return self.idle.pop()
        return self.backend.start(self.limits, self.mounts)

    def release(self, c: Container, healthy: bool) -> None:
        if healthy and c.runs < self.backend.config.recycle_after:
            with self.backend.lock:
                if not self.backend.closed:
                    self.idle.append(c)
                    return
        self.backend.discard(c)
        self.backend.background(self._replace)

    def _replace(self) -> None:
        """Start a fresh container for the one just recycled, so the next job finds it warm."""
        if self.backend.closed:
            return
        c = self.backend.start(self.limits, self.mounts)
        with self.backend.lock:
            if not self.backend.closed:
                self.idle.append(c)
                return
        self.backend.discard(c)


class DockerBackend:
    """Warm-pool Docker backend. Thread-safe; one instance may serve many threads."""

    name = NAME

    def __init__(self, config: DockerConfig | None = None, pooled: bool = True) -> None:
        self.config = config or DockerConfig(server=pooled)
        self.pooled = pooled
        self.name = (NAME if self.config.server else EXEC_NAME) if pooled else COLD_NAME
        self.lock = threading.Lock()
        self.pools: dict[PoolKey, _Pool] = {}
        self.live: set[Container] = set()
        self.threads: list[threading.Thread] = []
        self.closed = False
        self._client = None
        self._ready_at = -READY_TTL_S
        self.pool_id = uuid.uuid4().hex
        """Label value on every container of this instance (audits find exactly ours)."""
        atexit.register(self.close)

    def ready(self) -> str | None:
        """None when jobs can run, else why not (a positive answer is kept for READY_TTL_S)."""
        if time.monotonic() - self._ready_at < READY_TTL_S:
            return None
        if self._client is None:
            self._client = client()
            if self._client is None:
                return "no Docker daemon answers (start dockerd; see scripts/sandbox_setup.sh)"
            remove_orphans(self._client)
        if not image_present(self._client, self.config.image):
            return f"image {self.config.image} is missing (run `codeloop sandbox build-image`)"
        self._ready_at = time.monotonic()
        return None

    def execute(self, job: Job) -> RunResult:
        problem = self.ready() or unreadable_mount(job)
        if problem:
            return RunResult(status=RunStatus.SANDBOX_ERROR, message=f"docker backend: {problem}", backend=self.name)
        for _attempt in range(2):  # a dirty warm container gets one retry on a fresh one
            result = self._execute_once(job)
            if result.status is not RunStatus.SANDBOX_ERROR:
                break
        return result

    def _execute_once(self, job: Job) -> RunResult:
        if not self.pooled:
            c = self.start(job.limits, job.mounts)
            try:
                result, _ = c.execute(job)
            finally:
                self.discard(c)
            return _tag(result, self.name)
        pool = self._pool(job.limits, job.mounts)
        c = pool.acquire()
        healthy = False
        try:
            result, healthy = c.execute(job)
        except OSError as exc:
            # NOTE: our end of the container's stream failed (the CI flake: EBADF on a pooled container's
            # job-server socket; also a daemon that went away mid-run). The container is done for; the
            # job has produced no verdict, so it gets the backend's one retry on a fresh container.
            result = RunResult(status=RunStatus.SANDBOX_ERROR, backend=self.name,
                               message=f"docker backend: {type(exc).__name__}: {exc} (container {c.id[:12]})")
        finally:
            pool.release(c, healthy)
        return _tag(result, self.name)

    def _pool(self, limits: Limits, mounts: tuple[Mount, ...] = ()) -> _Pool:
        key = (limits.memory_mb, limits.pids, limits.cpus, limits.tmpfs_mb, mounts)
        with self.lock:
            if key not in self.pools:
                self.pools[key] = _Pool(self, limits, mounts)
            return self.pools[key]

    def warm(self, limits: Limits, count: int, mounts: tuple[Mount, ...] = ()) -> None:
        """Start ``count`` idle containers now, so the first jobs do not pay for it."""
        if self.ready() is not None or not self.pooled:
            return
        pool = self._pool(limits, mounts)
        started = [self.start(limits, mounts) for _ in range(count)]
        with self.lock:
            pool.idle.extend(started)

    def start(self, limits: Limits, mounts: tuple[Mount, ...] = ()) -> Container:
        c = Container(self._client, self.config, limits, self.pool_id, mounts)
        with self.lock:
            self.live.add(c)
        return c

    def discard(self, c: Container) -> None:
        """Forget ``c`` now; kill and remove it in the background (close waits for that)."""
        with self.lock:
            self.live.discard(c)
        self.background(c.remove)

    def background(self, work) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception:  # noqa: BLE001 - a failed refill or removal must not kill the caller
                pass

        thread = threading.Thread(target=guarded, daemon=True)
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def close(self) -> None:
        """Remove every container this backend started (waiting for background work). Idempotent."""
        with self.lock:
            self.closed = True
            threads = list(self.threads)
        for t in threads:
            t.join()
        with self.lock:
            doomed = list(self.live)
            self.live.clear()
            for pool in self.pools.values():
                pool.idle.clear()
        for c in doomed:
            c.remove()


def _tag(result: RunResult, name: str) -> RunResult:
    from dataclasses import replace

    return replace(result, backend=name)
