"""`Sdist`: one project's source distribution from PyPI, unpacked, and the Python files in it.

``fetch`` runs ``pip download --no-binary :all:`` (pip is the registry's own client) into a cache
folder and unpacks the archive once. ``python_files`` yields the project's own code: vendored
copies of other projects, build scaffolding and files over ``MAX_FILE_BYTES`` are left out,
since they are not the project's code or not code a suggestion could copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 1_000_000
VENDORED_DIRS = frozenset({"_vendor", "vendor", "vendored", "_vendored", "extern", "_extern", "external", "externals",
                           "third_party", "thirdparty", "3rdparty", "_thirdparty", "contrib_vendor"})
SKIPPED_DIRS = frozenset({".git", ".hg", "__pycache__", "build", "dist", ".tox", ".eggs", "node_modules"})
SKIPPED_FILES = frozenset({"setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py"})


@dataclass(frozen=True)
class Sdist:
    """An unpacked sdist: ``root`` holds ``PKG-INFO`` and the source tree."""

    name: str
    version: str
    root: Path

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"


def fetch(requirement: str, cache: Path, timeout_s: float = 900, download: bool = True) -> Sdist:
    """The unpacked sdist of ``name==version`` under ``cache``, downloaded when missing (and ``download``).

    Raises ``RuntimeError`` (one line) when it is not there and pip cannot (or may not) get it.
    """
    name, _, version = requirement.partition("==")
    if not version:
        raise ValueError(f"{requirement!r}: pin a version (name==version)")
    unpacked = cache / "unpacked" / f"{_norm(name)}-{version}"
    if not unpacked.is_dir():
        archive = _find_archive(cache, name, version)
        if archive is None and not download:
            raise RuntimeError(f"{name}=={version} is not in {cache} (offline)")
        archive = archive or _download(name, version, cache, timeout_s)
        _unpack(archive, unpacked)
    return Sdist(name, version, _single_root(unpacked))


def python_files(sdist: Sdist, max_bytes: int = MAX_FILE_BYTES) -> Iterator[tuple[str, str]]:
    """``(path relative to the sdist root, text)`` of each Python file that is the project's own."""
    for dirpath, dirnames, filenames in os.walk(sdist.root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and d.lower() not in VENDORED_DIRS
                             and not d.endswith(".egg-info"))
        for filename in sorted(filenames):
            if not filename.endswith(".py") or filename in SKIPPED_FILES:
                continue
            path = Path(dirpath) / filename
            if path.is_symlink() or path.stat().st_size > max_bytes:
                continue
            yield path.relative_to(sdist.root).as_posix(), path.read_text(encoding="utf-8", errors="replace")


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _find_archive(cache: Path, name: str, version: str) -> Path | None:
    wanted = {f"{_norm(name)}-{version}"}
    for path in sorted(cache.glob("*")):
        stem = path.name.removesuffix(".tar.gz").removesuffix(".zip").removesuffix(".tar.bz2")
        if stem != path.name and _norm(stem) in {_norm(w) for w in wanted}:
            return path
    return None


def _download(name: str, version: str, cache: Path, timeout_s: float) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name,
               "--ignore-requires-python", f"{name}=={version}", "-d", str(cache)]
    # setuptools-scm cannot see a version without git metadata; tell it the one we asked for
    env = {**os.environ, "SETUPTOOLS_SCM_PRETEND_VERSION": version}
    for extra in (["--no-build-isolation"], []):  # building metadata in the current env is faster
        try:
            done = subprocess.run(command + extra, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            continue
        archive = _find_archive(cache, name, version)
        if done.returncode == 0 and archive is not None:
            return archive
    raise RuntimeError(f"pip could not download the sdist of {name}=={version}")


def _unpack(archive: Path, into: Path) -> None:
    partial = into.with_name(into.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(partial)
    else:
        with tarfile.open(archive) as tarred:
            tarred.extractall(partial, filter="data")
    partial.rename(into)


def _single_root(unpacked: Path) -> Path:
    entries = [p for p in unpacked.iterdir() if p.is_dir()]
    return entries[0] if len(entries) == 1 and not (unpacked / "PKG-INFO").exists() else unpacked
