"""bubblewrap backend: one unprivileged, fully unshared namespace set per run (~30 ms).

Chain per run (each step ``exec``s the next, so the parent holds one pid, in its own session):
  sh (root: join the run's memory + pids cgroups) -> setpriv (drop to a per-run uid, no groups)
  -> prlimit (nofile, core; nproc/as only without cgroups) -> bwrap -> python3 -I harness.
Isolation: user, pid, net (loopback only), ipc, uts, mount and cgroup namespaces unshared; the
root is the sandbox rootfs (or the host's /usr) read-only; /work and /tmp are size-capped tmpfs
that vanish with the run; environment cleared; all capabilities dropped; ``--die-with-parent``.
A job's mounts are read-only binds under a fresh tmpfs at /mnt.
The uid is unprivileged on the host too (not root mapped into a namespace), so host files that
are not world-readable stay unreadable even through a kernel bug in namespace handling.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.cgroup import CgroupParents, RunCgroup
from sandbox.harness_exchange import harness_argv, run_process
from sandbox.image import DEFAULT_ROOTFS
from sandbox.job import Job, unreadable_mount
from sandbox.process_group import kill_process_group
from sandbox.types import MOUNT_ROOT, Mount, RunResult, RunStatus

NAME = "bwrap"
WORKDIR = "/work"
JOIN_CGROUPS = 'for f in $1; do echo $$ > "$f" || exit 97; done; shift; exec "$@"'


@dataclass(frozen=True)
class BwrapConfig:
    """Where the read-only root comes from and which host uids runs may use."""

    rootfs: Path | None = field(default_factory=lambda: DEFAULT_ROOTFS if (DEFAULT_ROOTFS / "usr/bin/python3").exists() else None)
    """A debootstrap rootfs used as /; None binds the host's /usr instead."""
    uid_base: int = 61000
    uid_count: int = 4096
    use_cgroups: bool = True


class UidPool:
    """Hands out distinct host uids so that concurrent runs never share one (RLIMIT_NPROC is per uid)."""

    def __init__(self, base: int, count: int) -> None:
        self._free = list(range(base, base + count))
        random.shuffle(self._free)  # other processes use the same range: make collisions rare
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            if not self._free:
                raise RuntimeError("no free sandbox uid (too many concurrent runs)")
            return self._free.pop()

    def release(self, uid: int) -> None:
        with self._lock:
            self._free.append(uid)


def available() -> str | None:
    """None if bwrap can be used here, else why not."""
    missing = [tool for tool in ("bwrap", "setpriv", "prlimit") if not shutil.which(tool)]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install bubblewrap util-linux)"
    if os.geteuid() != 0:
        return "the bwrap backend runs as root (it drops to a per-run uid)"
    return None


class BwrapBackend:
    """Runs jobs under bubblewrap. Thread-safe: run_many calls ``execute`` from many threads."""

    name = NAME

    def __init__(self, config: BwrapConfig | None = None) -> None:
        self.config = config or BwrapConfig()
        self.uids = UidPool(self.config.uid_base, self.config.uid_count)
        self.cgroups = CgroupParents.discover() if self.config.use_cgroups else CgroupParents(None, None)
        self.tools = {t: shutil.which(t) or t for t in ("sh", "setpriv", "prlimit", "bwrap")}

    def execute(self, job: Job) -> RunResult:
        problem = available() or unreadable_mount(job)
        if problem:
            return RunResult(status=RunStatus.SANDBOX_ERROR, message=f"bwrap backend: {problem}", backend=NAME)
        uid = self.uids.acquire()
        cgroup = None
        try:
            limits = job.limits
            cgroup = RunCgroup(self.cgroups, limits.memory_mb * 2**20, limits.pids, limits.cpus)
            argv = self._argv(job, uid, cgroup)
            return run_process(argv, job, WORKDIR, NAME, kill=kill_process_group, oom=cgroup.oom_killed)
        finally:
            if cgroup is not None:
                cgroup.destroy(then=lambda: self.uids.release(uid))
            else:
                self.uids.release(uid)

    def _argv(self, job: Job, uid: int, cgroup: RunCgroup) -> list[str]:
        t, limits = self.tools, job.limits
        rlimits = ["--nofile=1024:1024", "--core=0:0", f"--stack={2**23}", f"--fsize={limits.tmpfs_mb * 2**20}"]
        if cgroup.pids is None:
            rlimits.append(f"--nproc={limits.pids}:{limits.pids}")
        if cgroup.memory is None:
            rlimits.append(f"--as={limits.memory_mb * 2**20}")
        return [
            t["sh"], "-c", JOIN_CGROUPS, "sh", " ".join(cgroup.procs_files),
            t["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
            t["prlimit"], *rlimits, "--",
            t["bwrap"], *self._bwrap_args(limits.tmpfs_mb, job.mounts), *harness_argv("/usr/bin/python3"),
        ]

    def _bwrap_args(self, tmpfs_mb: int, mounts: tuple[Mount, ...] = ()) -> list[str]:
        if self.config.rootfs is not None:
            root = ["--ro-bind", str(self.config.rootfs), "/"]
        else:
            root = ["--ro-bind", "/usr", "/usr"] + [
                arg for d in ("bin", "lib", "lib64", "sbin") for arg in ("--symlink", f"usr/{d}", f"/{d}")
            ]
        size = str(tmpfs_mb * 2**20)
        return [
            "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            *root,
            "--size", size, "--tmpfs", WORKDIR, "--size", size, "--tmpfs", "/tmp",
            *_mount_args(mounts),
            "--proc", "/proc", "--dev", "/dev", "--chdir", WORKDIR, "--hostname", "sandbox",
            "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
            "--setenv", "HOME", WORKDIR, "--setenv", "LANG", "C.UTF-8",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        ]


def _mount_args(mounts: tuple[Mount, ...]) -> list[str]:
    if not mounts:
        return []
    # NOTE: a tmpfs first: bwrap creates each target's parents there (the rootfs is read-only).
    return ["--tmpfs", MOUNT_ROOT] + [a for m in mounts for a in ("--ro-bind", m.source, m.target)]

