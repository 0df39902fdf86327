"""``RepoTarget``: the repository to mine or evaluate, and the environment its tests run in.

A target is a folder (its own ``.venv``/``venv``, an interpreter given with ``--python``, or this
interpreter when the repository's dependencies are importable by it), or a SWE-bench instance id (optionally
``swebench:<id>``): the instance's working copy and venv are built once by the SWE-bench harness
(evals/swebench/environment.py, shared with ``codeloop eval swebench``) and ``coverage`` is added to the venv.
Tasks record ``source`` so that an eval finds the same repository and environment again.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from sandbox.suite.environment import EnvError, SuiteEnv

SWEBENCH_PREFIX = "swebench:"
COVERAGE_REQUIREMENT = "coverage>=7,<8"


class TargetError(ValueError):
    """The repository cannot be used (a one-line reason)."""


@dataclass(frozen=True)
class RepoTarget:
    name: str
    source: str
    env: SuiteEnv

    @property
    def root(self) -> Path:
        return self.env.root


def resolve_target(spec: str, *, python: Path | None = None, swebench_dir: Path | None = None,
                   work_dir: Path | None = None) -> RepoTarget:
    """The target named by ``spec`` (a folder, or a SWE-bench instance id)."""
    folder = Path(spec).expanduser()
    if not spec.startswith(SWEBENCH_PREFIX) and folder.is_dir():
        try:
            env = SuiteEnv.create(folder, python)
        except EnvError as exc:
            raise TargetError(str(exc)) from exc
        return RepoTarget(env.root.name, str(env.root), env)
    instance_id = spec.removeprefix(SWEBENCH_PREFIX)
    if swebench_dir is None:
        raise TargetError(f"{spec}: no such folder")
    return _swebench_target(instance_id, swebench_dir, work_dir)


def _swebench_target(instance_id: str, root: Path, work_dir: Path | None) -> RepoTarget:
    from evals import datasets
    from evals.swebench.environment import HarnessConfig, InstanceEnv, SetupError
    from evals.swebench.instance import SweInstance
    from evals.swebench.pipeline import DEFAULT_WORK_DIR

    try:
        rows = {t.task_id: t.metadata["instance"] for t in datasets.load("swebench", swebench_dir=root)}
    except (datasets.DatasetError, OSError) as exc:
        raise TargetError(f"{instance_id}: neither a folder nor a SWE-bench instance ({exc})") from exc
    if instance_id not in rows:
        raise TargetError(f"{instance_id}: neither a folder nor a SWE-bench instance in {root} "
                          f"(instances: {', '.join(sorted(rows)[:6])}, ...)")
    instance = SweInstance.from_row(rows[instance_id], root)
    ienv = InstanceEnv(instance, HarnessConfig(work_dir=work_dir or DEFAULT_WORK_DIR))
    try:
        ienv.setup()
        ienv.reset()
    except SetupError as exc:
        raise TargetError(f"{instance_id}: environment setup failed: {str(exc).splitlines()[0]}") from exc
    python = ienv.venv / "bin" / "python"
    _ensure_coverage(python, instance_id)
    env = SuiteEnv.create(ienv.src, python, variables=dict(instance.env))
    return RepoTarget(instance_id, SWEBENCH_PREFIX + instance_id, env)


def _ensure_coverage(python: Path, name: str) -> None:
    """Install ``coverage`` into a venv the harness built (outside the sandbox: it needs PyPI)."""
    probe = subprocess.run([str(python), "-c", "import coverage"], capture_output=True, timeout=120)
    if probe.returncode == 0:
        return
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", COVERAGE_REQUIREMENT],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise TargetError(f"{name}: cannot install {COVERAGE_REQUIREMENT} into {python}: {tail[0]}")
