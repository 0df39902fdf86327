"""``SuiteEnv``: how a repository's tests run in the sandbox (where, with which interpreter, what it needs).

The interpreter is the repository's own virtual environment when it has one, or any interpreter that can
import the repository's dependencies. The folders it needs (the venv, the installation it was made from,
editable installs outside the repository) are found statically from ``pyvenv.cfg`` and ``.pth`` files:
nothing of the repository or its environment runs outside the sandbox.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

VENV_NAMES = (".venv", "venv", "env")
"""Folders inside a repository that are taken as its virtual environment, in this order."""


class EnvError(ValueError):
    """The repository or its interpreter cannot be used (a one-line reason)."""


@dataclass(frozen=True)
class SuiteEnv:
    """Invariant: ``root`` and ``python`` exist; ``folders`` hold everything the interpreter reads
    besides the host's /usr (the sandbox shows nothing else)."""

    root: Path
    """The repository: the test run's working folder, shown read-only."""
    python: Path
    folders: tuple[str, ...]
    variables: dict[str, str] = field(default_factory=dict)
    """Extra environment variables of every run (e.g. SETUPTOOLS_SCM_PRETEND_VERSION)."""
    pytest_args: tuple[str, ...] = ()
    """Arguments of a whole-suite run (empty: pytest's configuration of the repository decides)."""

    @classmethod
    def create(cls, root: Path, python: Path | None = None, variables: dict[str, str] | None = None,
               pytest_args: tuple[str, ...] = ()) -> SuiteEnv:
        """The environment of ``root``: ``python``, else the repository's own venv, else this interpreter."""
        root = Path(root).resolve()
        if not root.is_dir():
            raise EnvError(f"{root}: not a folder")
        if root.stat().st_mode & 0o005 != 0o005:
            raise EnvError(f"{root}: other users cannot read it, and the sandbox runs the tests as an unprivileged "
                           f"user (chmod o+rX)")
        python = Path(python) if python else _own_venv(root) or Path(sys.executable)
        python = python if python.is_absolute() else Path.cwd() / python
        if not python.exists():
            raise EnvError(f"{python}: no such interpreter")
        return cls(root, python, interpreter_folders(python, root), dict(variables or {}), tuple(pytest_args))

    def environ(self) -> dict[str, str]:
        """The whole environment of a run (the sandbox clears everything else)."""
        env = {"PATH": f"{self.python.parent}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp",
               "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
        venv = _venv_of(self.python)
        if venv is not None:
            env["VIRTUAL_ENV"] = str(venv)
        env.update(self.variables)
        return env

    def identity(self) -> dict[str, object]:
        """What decides the results of a run besides the files (part of the coverage-map cache key)."""
        return {"python": str(self.python), "variables": self.variables, "pytest_args": list(self.pytest_args)}


def _own_venv(root: Path) -> Path | None:
    for name in VENV_NAMES:
        candidate = root / name / "bin" / "python"
        if candidate.exists():
            return candidate
    return None


def _venv_of(python: Path) -> Path | None:
    venv = python.parent.parent
    return venv if (venv / "pyvenv.cfg").is_file() else None


def interpreter_folders(python: Path, root: Path) -> tuple[str, ...]:
    """Folders ``python`` reads from: its venv, the base installation, and editable-install paths."""
    found: list[Path] = []
    venv = _venv_of(python)
    if venv is not None:
        found.append(venv)
        home = _pyvenv_home(venv / "pyvenv.cfg")
        if home is not None:
            found.append(home.parent)
        found.extend(_pth_folders(venv))
    found.append(python.resolve().parent.parent)
    keep: list[str] = []
    for p in sorted({f.resolve() for f in found if f.is_dir()}, key=lambda f: len(str(f))):
        if str(p) in ("/", "/usr") or p == root or root in p.parents:
            continue
        if not any(Path(k) in p.parents for k in keep):
            keep.append(str(p))
    return tuple(keep)


def _pyvenv_home(cfg: Path) -> Path | None:
    for line in cfg.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            return Path(value.strip())
    return None


def _pth_folders(venv: Path) -> list[Path]:
    """Absolute folders named by ``.pth`` files of the venv's site-packages (editable installs)."""
    out = []
    for pth in venv.glob("lib/python*/site-packages/*.pth"):
        for line in pth.read_text(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("/") and Path(line).is_dir():
                out.append(Path(line))
    return out
