"""Per-run cgroups: a cgroup that cannot be removed in time never costs the run its verdict."""

from __future__ import annotations

import threading
from pathlib import Path

from sandbox.cgroup import CgroupParents, RunCgroup


def _busy_cgroup(tmp_path: Path) -> RunCgroup:
    # Plain folders stand in for cgroupfs: the limit files written into them keep rmdir failing (ENOTEMPTY),
    # as a killed process still exiting keeps a real cgroup busy (EBUSY).
    parents = CgroupParents(memory=tmp_path / "memory", pids=tmp_path / "pids")
    for d in (parents.memory, parents.pids):
        d.mkdir()
    return RunCgroup(parents, 2**26, 64)


def test_a_busy_cgroup_goes_to_the_reaper_which_removes_it_then_frees_the_run(tmp_path):
    cgroup = _busy_cgroup(tmp_path)
    dirs = list(cgroup.dirs)
    freed = threading.Event()
    cgroup.destroy(timeout_s=0.05, then=freed.set)  # returns, does not raise
    assert not freed.is_set() and all(d.is_dir() for d in dirs)
    for d in dirs:  # the "process" exits
        for f in d.iterdir():
            f.unlink()
    assert freed.wait(10)
    assert not any(d.exists() for d in dirs)


def test_an_idle_cgroup_is_removed_at_once(tmp_path):
    cgroup = _busy_cgroup(tmp_path)
    for d in cgroup.dirs:
        for f in d.iterdir():
            f.unlink()
    freed = []
    cgroup.destroy(then=lambda: freed.append(1))
    assert freed == [1] and not any(list(p.iterdir()) for p in (tmp_path / "memory", tmp_path / "pids"))
