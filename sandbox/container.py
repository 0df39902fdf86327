"""One hardened sandbox container (Docker SDK) and the running of a job inside it via ``exec``.

Every container is created with: no network, memory = memory+swap limit, pids limit, CPU quota,
read-only root, size-capped tmpfs at /work (and /tmp), all capabilities dropped,
no-new-privileges, the image's unprivileged user, a private IPC namespace, and no host mounts but the
read-only ones a job asks for (a pool of containers per set of mounts).
The container's PID 1 only sleeps; a job is either a fork of the container's job server (one
long-lived ``docker exec``, see sandbox/job_server.py) or its own ``docker exec`` of the harness; both
are fed over the exec socket. Invariant: a container whose run misbehaved (timeout, kill, OOM, orphans, protocol
trouble) is reported unhealthy and must be removed, never reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from sandbox.harness_exchange import Exchange, harness_argv
from sandbox.image import DEFAULT_IMAGE, SANDBOX_UID
from sandbox.job import Job
from sandbox.supervisor import FrameDemux, Pump, StopReason, Stream, shutdown_write
from sandbox.types import Limits, Mount, RunResult, RunStatus

LABEL = "codeloop.sandbox"
OWNER_LABEL = "codeloop.owner"
POOL_LABEL = "codeloop.pool"
WORKDIR = "/work"
SCRATCH = (WORKDIR, "/tmp", "/dev/shm")
CGROUP_ROOT = Path("/sys/fs/cgroup")
HEALTHY = (RunStatus.PASSED, RunStatus.FAILED, RunStatus.ERROR)
EXEC_EXIT_GRACE_S = 2.0
# PID 1: non-dumpable (a job under the same uid can neither ptrace it nor open its /proc files),
# stdio on /dev/null (nothing to read from or write to), reaps orphans.
INIT_PROGRAM = """
import ctypes, os, signal
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
signal.signal(signal.SIGCHLD, lambda *a: None)
while True:
    try:
        os.wait()
    except ChildProcessError:
        signal.pause()
"""


@dataclass(frozen=True)
class DockerConfig:
    """Which image to run and when to recycle a warm container."""

    image: str = DEFAULT_IMAGE
    recycle_after: int = 50
    python: str = "/usr/bin/python3"
    server: bool = True
    """True: jobs are forks of a job server inside the container (sandbox/job_server.py);
    False: one ``docker exec`` of the harness per job."""


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Container:
    """A started sandbox container; ``execute`` runs one job in a freshly emptied /work."""

    def __init__(self, client, config: DockerConfig, limits: Limits, pool_id: str = "",
                 mounts: tuple[Mount, ...] = ()) -> None:
        from docker.types import LogConfig, Ulimit

        self.client, self.config = client, config
        mem = f"{limits.memory_mb}m"
        self.handle = client.containers.run(
            config.image, command=[config.python, "-I", "-S", "-c", INIT_PROGRAM], detach=True,
            log_config=LogConfig(type="none"),
            network_mode="none", mem_limit=mem, memswap_limit=mem, pids_limit=limits.pids,
            nano_cpus=int(limits.cpus * 1e9), read_only=True,
            # NOTE: docker mounts tmpfs noexec unless told; code under test runs scripts it writes (as with
            # bwrap and the official harnesses), and the container stays non-root, capless and offline.
            tmpfs={WORKDIR: f"rw,exec,nosuid,nodev,size={limits.tmpfs_mb}m,mode=1777",
                   "/tmp": f"rw,exec,nosuid,nodev,size={limits.tmpfs_mb}m,mode=1777"},
            volumes={m.source: {"bind": m.target, "mode": "ro"} for m in mounts},
            cap_drop=["ALL"], security_opt=["no-new-privileges"], user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            working_dir=WORKDIR, environment={"HOME": WORKDIR, "LANG": "C.UTF-8"},
            labels={LABEL: "1", OWNER_LABEL: owner_tag(), POOL_LABEL: pool_id}, ipc_mode="private", hostname="sandbox",
            ulimits=[Ulimit(name="nofile", soft=1024, hard=1024), Ulimit(name="core", soft=0, hard=0)],
        )
        self.id = self.handle.id
        self.runs = 0
        self.server = None  # socket of the job server's exec, once started
        self.server_inode = -1
        self.route = FrameDemux({})
        self.outer = FrameDemux({})

    def execute(self, job: Job) -> tuple[RunResult, bool]:
        """Run one job; returns the result and whether this container may be reused."""
        self.runs += 1
        ooms_before = self._oom_kills()
        if self.config.server:
            reason, exit_code, ex, clean = self._via_server(job)
        else:
            reason, exit_code, ex, clean = self._via_exec(job)
        if reason is not StopReason.EOF or exit_code is None:
            self.abandon()
            clean = False
        ooms_after = self._oom_kills()
        oom = None if ooms_after is None or ooms_before is None else ooms_after > ooms_before
        result = ex.result(reason, exit_code, "", oom=oom)
        if reason is StopReason.EOF and exit_code is None and result.status not in (RunStatus.PASSED, RunStatus.FAILED):
            result = replace(result, status=RunStatus.KILLED,
                             message="the sandbox worker died during the run (killed by the code?)")
        healthy = clean and result.status in HEALTHY and self._idle()
        return result, healthy

    def _via_exec(self, job: Job) -> tuple[StopReason, int | None, Exchange, bool]:
        """One ``docker exec`` of the harness per job (~100 ms of runc + interpreter start)."""
        api = self.client.api
        exec_id = api.exec_create(self.id, harness_argv(self.config.python), stdin=True, stdout=True,
                                  stderr=True, user=f"{SANDBOX_UID}:{SANDBOX_UID}", workdir=WORKDIR)["Id"]
        ex = Exchange(job, WORKDIR, SCRATCH)
        raw = _raw(api.exec_start(exec_id, socket=True))
        demux = FrameDemux({1: ex.stdout_sink, 2: ex.stderr_sink})
        try:
            # NOTE: Docker closes an exec's stream some time after the process exits (slow under load).
            pump = Pump(raw.fileno(), ex.stdin, shutdown_write(raw), [Stream(raw.fileno(), demux.feed)],
                        alive=lambda: not ex.harness_finished(), exit_grace_s=EXEC_EXIT_GRACE_S)
            reason = ex.pump(pump)
        finally:
            raw.close()
        exit_code = self._exit_code(exec_id) if reason in (StopReason.EOF, StopReason.EXITED) else None
        return reason, exit_code, ex, True

    def _via_server(self, job: Job) -> tuple[StopReason, int | None, Exchange, bool]:
        """One request to the container's job server (a fork, no exec)."""
        if not self._server_ours():  # never started, or our end closed (or its descriptor, behind our back)
            self._close_server()  # a socket whose number is no longer its own forgets it (never closes it)
            self._start_server()
        assert self.server is not None
        ex = Exchange(job, WORKDIR, SCRATCH)
        exit_info: dict = {}
        self.route = FrameDemux({1: ex.stdout_sink, 2: ex.stderr_sink,
                                 3: lambda data: exit_info.update(json.loads(data))})
        request = struct.pack(">L", len(ex.payload)) + ex.payload
        fd = self.server.fileno()
        pump = Pump(fd, request, lambda: None, [Stream(fd, self.outer.feed)], alive=lambda: True,
                    finished=lambda: bool(exit_info))
        reason = ex.pump(pump)
        return reason, exit_info.get("exit"), ex, not exit_info.get("orphans", True)

    def _start_server(self) -> None:
        api = self.client.api
        exec_id = api.exec_create(self.id, harness_argv(self.config.python, server=True), stdin=True,
                                  stdout=True, stderr=True, user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                                  workdir=WORKDIR)["Id"]
        self.server = _raw(api.exec_start(exec_id, socket=True))
        self.server_inode = os.fstat(self.server.fileno()).st_ino
        self.outer = FrameDemux({1: lambda data: self.route.feed(data), 2: lambda data: None})

    def _exit_code(self, exec_id: str) -> int | None:
        for _ in range(20):
            info = self.client.api.exec_inspect(exec_id)
            if not info.get("Running"):
                return info.get("ExitCode")
            time.sleep(0.01)
        return None

    def _cgroup_file(self, controller: str, name: str) -> Path:
        return CGROUP_ROOT / controller / "docker" / self.id / name

    def _oom_kills(self) -> int | None:
        try:
            text = self._cgroup_file("memory", "memory.oom_control").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return None

    def _idle(self) -> bool:
        """Only PID 1 and the job server are left: no orphan survived the run."""
        baseline = 2 if self.server is not None else 1
        try:
            return int(self._cgroup_file("pids", "pids.current").read_text()) <= baseline
        except (OSError, ValueError):
            return True  # unknown layout: rely on the other health signals

    def abandon(self) -> None:
        """Stop listening and kill without waiting: the result is due now, whatever the container does.

        NOTE: ``docker kill`` of a container whose job floods stdout took ~10 s (the daemon drains
        the exec's stream first), far past the wall clock. Closing our end of the stream and killing
        in a background thread keeps the wall-clock limit; the container is unhealthy, so its owner
        removes it (``remove`` kills too) and never reuses it.
        """
        self._close_server()
        threading.Thread(target=self.kill, daemon=True, name="sandbox-kill").start()

    def _server_ours(self) -> bool:
        """The job server's socket is open and its descriptor is still that socket."""
        if self.server is None or self.server.fileno() == -1:
            return False
        try:
            return os.fstat(self.server.fileno()).st_ino == self.server_inode
        except OSError:
            return False

    def _close_server(self) -> None:
        """Close our end of the job server's stream; a run's verdict never depends on it.

        NOTE: a descriptor closed behind the socket object's back (the CI flake's EBADF) keeps its number
        in the object; by now the number may name another file of this process (an HTTP connection to the
        daemon, in tests), so such a socket forgets its number instead of closing it."""
        if self.server is None:
            return
        if not self._server_ours():
            with contextlib.suppress(OSError):
                self.server.detach()
            return
        with contextlib.suppress(OSError):
            self.server.close()

    def kill(self) -> None:
        try:
            self.handle.kill()
        except Exception:  # noqa: BLE001 - already dead or gone
            pass

    def remove(self) -> None:
        self._close_server()
        try:
            self.handle.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _raw(sock):
    """The plain socket under the SDK's hijacked exec connection."""
    return getattr(sock, "_sock", sock)
