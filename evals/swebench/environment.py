"""A per-instance working copy and venv: built once, reset to the base commit before every evaluation.

Layout under ``work_dir/<instance_id>/``: ``src/`` (the source tree, a git repo whose HEAD is the base) and
``venv/``. ``.ready`` marks a finished setup; a setup that fails leaves no mark and is redone next time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from evals.swebench.instance import SweInstance
from sandbox.process_group import kill_process_group


class SetupError(Exception):
    """Building the environment failed (an infrastructure error, never a model failure)."""


@dataclass(frozen=True)
class HarnessConfig:
    """Where environments live and how long steps may take."""

    work_dir: Path
    pyenv_root: Path = Path(os.path.expanduser("~/.pyenv"))
    install_timeout_s: float = 1800.0
    test_timeout_s: float = 1800.0


@dataclass
class CommandResult:
    returncode: int
    output: str
    seconds: float
    timed_out: bool = False


class InstanceEnv:
    """The working copy and venv of one instance."""

    def __init__(self, instance: SweInstance, config: HarnessConfig) -> None:
        self.instance = instance
        self.config = config
        self.home = Path(config.work_dir) / instance.instance_id
        self.src = self.home / "src"
        self.venv = self.home / "venv"

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env.update(self.instance.env)
        return env

    def sh(self, cmd: str, timeout_s: float, cwd: Path | None = None) -> CommandResult:
        """Run ``cmd`` with bash in the activated venv; output is stdout and stderr together."""
        start = time.perf_counter()
        proc = subprocess.Popen(["bash", "-c", cmd], cwd=cwd or self.src, env=self.environ(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace",
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            return CommandResult(proc.returncode, out, time.perf_counter() - start)
        except subprocess.TimeoutExpired:
            kill_process_group(proc)
            out, _ = proc.communicate()
            return CommandResult(-9, out or "", time.perf_counter() - start, timed_out=True)

    def setup(self) -> float:
        """Build the env if needed; returns the seconds spent (0 when it was ready)."""
        if (self.home / ".ready").exists():
            return 0.0
        start = time.perf_counter()
        shutil.rmtree(self.home, ignore_errors=True)
        self.src.mkdir(parents=True)
        python = self.config.pyenv_root / "versions" / self.instance.python / "bin" / "python"
        if not python.exists():
            raise SetupError(f"{self.instance.instance_id}: interpreter {python} not found (pyenv {self.instance.python})")
        steps = [
            (f"tar -xJf {self.instance.archive} -C {self.src}", self.src),
            ("git init -q && git add -A && git -c user.name=eval -c user.email=eval@localhost commit -qm base", self.src),
            (f"{python} -m venv {self.venv}", self.home),
            *((cmd, self.src) for cmd in self.instance.install_steps),
        ]
        for cmd, cwd in steps:
            res = self.sh(cmd, self.config.install_timeout_s, cwd=cwd)
            if res.returncode != 0:
                raise SetupError(f"{self.instance.instance_id}: setup step failed ({cmd!r}):\n{res.output[-2000:]}")
        self.sh("git add -A >/dev/null 2>&1; git -c user.name=eval -c user.email=eval@localhost commit -qm built "
                ">/dev/null 2>&1 || true", 60)  # files the install wrote are part of the base from now on
        (self.home / ".ready").write_text("ok\n")
        return time.perf_counter() - start

    def reset(self) -> None:
        """Back to the built base: tracked files restored, untracked files removed."""
        res = self.sh("git reset -q --hard HEAD && git clean -fdq", 300)
        if res.returncode != 0:
            raise SetupError(f"{self.instance.instance_id}: cannot reset the working copy:\n{res.output[-1000:]}")
