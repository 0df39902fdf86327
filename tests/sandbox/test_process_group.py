"""``kill_process_group`` ends a child and what it forked; a group already gone is not an error."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from sandbox.process_group import kill_process_group


def test_kills_the_child_and_its_children_then_tolerates_a_gone_group():
    code = "import subprocess, sys, time; c = subprocess.Popen(['sleep', '600']); print(c.pid, flush=True); time.sleep(600)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    grandchild = int(proc.stdout.readline())
    kill_process_group(proc)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    # the grandchild got the same SIGKILL: it ends (gone, or a zombie until init reaps it)
    deadline = time.monotonic() + 60
    while _state(grandchild) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(grandchild) in (None, "Z")
    kill_process_group(proc)  # the group is gone: no error


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None
