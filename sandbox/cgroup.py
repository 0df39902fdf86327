"""Per-run cgroups (v1 memory + pids + cpu) for the bubblewrap backend, created under our own.

A run's cgroup holds every process the run starts, so the parent can cap memory, pids and CPU, learn
whether the OOM killer struck, and kill everything left over. Invariant: after ``destroy`` the
cgroup directories are gone, or (a killed process still exiting after ``timeout_s``, seen on a loaded machine)
handed to the reaper thread, which keeps killing and removing them; ``then`` runs once they are gone, so a
run's uid is not reused while a process of that run may live. A run's verdict never depends on its cleanup.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
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

    def destroy(self, timeout_s: float = 5.0, then: Callable[[], None] = lambda: None) -> None:
        """SIGKILL every process left in the run's cgroups and remove them, then call ``then``. Cgroups still
        busy after ``timeout_s`` go to the reaper (``then`` runs when it removed them); never raises."""
        if not self._remove(time.monotonic() + timeout_s):
            log.warning("run cgroups %s still busy after %.0f s: the reaper removes them", self.dirs, timeout_s)
            threading.Thread(target=self._reap, args=(then,), name="cgroup-reaper", daemon=True).start()
            return
        then()

    def _remove(self, deadline: float) -> bool:
        while self.dirs:
            d = self.dirs[0]
            for pid in _pids(d):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
                continue
            self.dirs.pop(0)
        return True

    def _reap(self, then: Callable[[], None], pause_s: float = 1.0) -> None:
        while not self._remove(time.monotonic() + pause_s):
            time.sleep(pause_s)
        log.info("reaped a run's busy cgroups")
        then()


def _pids(d: Path) -> list[int]:
    try:
        return [int(x) for x in (d / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []
