"""``kill_process_group``: SIGKILL a child started with ``start_new_session=True`` and everything it forked.

The one way the code base ends a process group: the sandbox backends on a timeout, the repository test-suite
runner, the SWE-bench environment. A group that is already gone is not an error.
"""

from __future__ import annotations

import os
import signal
import subprocess


def kill_process_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group ``proc`` leads (``proc`` must have been started in its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
