"""``unsafe_subprocess``: the harness in a plain local subprocess, NO isolation at all.

It exists only to measure the overhead of the real backends (bench) and is never chosen by
``backend="auto"``. The code runs with this process's user, files and network.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from sandbox.harness_exchange import harness_argv, run_process
from sandbox.job import Job
from sandbox.process_group import kill_process_group
from sandbox.types import RunResult, RunStatus

NAME = "unsafe_subprocess"


class UnsafeSubprocessBackend:
    """Runs the job in a temporary directory with the current interpreter. Not a sandbox."""

    name = NAME

    def execute(self, job: Job) -> RunResult:
        if job.mounts:
            return RunResult(status=RunStatus.SANDBOX_ERROR, backend=NAME,
                             message="unsafe_subprocess cannot make mounts read-only: use bwrap or docker")
        workdir = tempfile.mkdtemp(prefix="codeloop-unsafe-")
        try:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": workdir}
            python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
            return run_process(harness_argv(python), job, workdir, NAME, kill=kill_process_group, env=env, cwd=workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

