"""Per-run cgroups (v1 memory + pids + cpu) for the bubblewrap backend, created under our own.

A run's cgroup holds every process the run starts, so the parent can cap memory, pids and CPU, learn
whether the OOM killer struck, and kill everything left over. Invariant: after ``destroy`` the
cgroup directories are gone (or it raised), so no cgroup outlives its run.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = "codeloop-"


@dataclass(frozen=True)
class CgroupParents:
    """Where per-run cgroups are made: our own memory and pids cgroups (None if not writable)."""

    memory: Path | None
    pids: Path | None
    cpu: Path | None = None

    @classmethod
    def discover(cls, proc_cgroup: Path = Path("/proc/self/cgroup")) -> CgroupParents:
        found: dict[str, Path | None] = {"memory": None, "pids": None, "cpu": None}
        try:
            lines = proc_cgroup.read_text().splitlines()
        except OSError:
            lines = []
        for line in lines:
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            for ctrl in parts[1].split(","):
                if ctrl in found:
                    path = CGROUP_ROOT / ctrl / parts[2].lstrip("/")
                    if path.is_dir() and os.access(path, os.W_OK):
                        found[ctrl] = path
        return cls(memory=found["memory"], pids=found["pids"], cpu=found["cpu"])

    def leftovers(self, pid: int | None = None) -> list[Path]:
        """Per-run cgroups of process ``pid`` (default: this one) that still exist: a leak when
        that process has no run in flight."""
        pattern = f"{PREFIX}{pid or os.getpid()}-*"
        return [p for parent in (self.memory, self.pids, self.cpu) if parent for p in parent.glob(pattern)]


class RunCgroup:
    """The memory and pids cgroups of one run."""

    def __init__(self, parents: CgroupParents, memory_bytes: int, pids: int, cpus: float = 0.0) -> None:
        name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.dirs: list[Path] = []
        self.memory = self._make(parents.memory, name)
        self.pids = self._make(parents.pids, name)
        if self.memory:
            (self.memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            memsw = self.memory / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text(str(memory_bytes))
        if self.pids:
            (self.pids / "pids.max").write_text(str(pids))
        self.cpu = self._make(parents.cpu, name) if cpus > 0 else None
        if self.cpu:
            period = int((self.cpu / "cpu.cfs_period_us").read_text())
            (self.cpu / "cpu.cfs_quota_us").write_text(str(max(1000, int(cpus * period))))

    def _make(self, parent: Path | None, name: str) -> Path | None:
        if parent is None:
            return None
        path = parent / name
        path.mkdir()
        self.dirs.append(path)
        return path

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def oom_killed(self) -> bool | None:
        if not self.memory:
            return None
        try:
            text = (self.memory / "memory.oom_control").read_text()
        except OSError:
            return None
        fields = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(fields["oom_kill"]) > 0 if "oom_kill" in fields else None

    def destroy(self, timeout_s: float = 5.0) -> None:
        """SIGKILL every process left in the run's cgroups, then remove them."""
        deadline = time.monotonic() + timeout_s
        for d in self.dirs:
            while True:
                pids = _pids(d)
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    d.rmdir()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)


def _pids(d: Path) -> list[int]:
    try:
        return [int(x) for x in (d / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []
