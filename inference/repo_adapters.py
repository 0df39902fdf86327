"""Where a promoted per-repository LoRA adapter lives, and how a document finds its repository's adapter. No torch.

Layout under the codeloop home (``$CODELOOP_HOME`` or ``~/.cache/codeloop``, see ``catalog.cache_root``)::

    adapters/repos/STAMP                     rewritten on every promotion: a cheap "did anything change?" stat
    adapters/repos/<repo id>/current  ->  v-<time>-<rand>/   symlink, re-pointed atomically on promotion
    adapters/repos/<repo id>/v-.../          peft adapter files + repo.json {root, adapter_dir, base_model, ...}

``<repo id>`` is the resolved root's folder name plus a hash of its full path, so it is stable for a root and
distinct for two roots with the same name. Invariant: ``<repo id>/current`` is absent or points at a complete
version folder (files copied and ``repo.json`` written before the link is re-pointed); the previous version
is kept so a reader that resolved the old link can finish loading it, older ones are deleted.
The adapter is served under ``RepoAdapter.name`` (``repo:<repo id>``), the ``model`` a request names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inference.adapter_watch import WEIGHTS
from inference.catalog import cache_root

REPOS_DIR = Path("adapters") / "repos"
CURRENT = "current"
ENTRY = "repo.json"
STAMP = "STAMP"
ADAPTER_CONFIG = "adapter_config.json"
NAME_PREFIX = "repo:"


@dataclass(frozen=True)
class RepoAdapter:
    """One promoted adapter: the repository root it serves and the folder holding its peft files."""

    root: str
    """Resolved absolute repository root."""
    adapter_dir: str
    """The ``current`` link of this root (follows later promotions); peft files + ``repo.json``."""
    base_model: str
    promoted_at: str
    """UTC, ISO 8601."""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def repo_id(self) -> str:
        return repo_id(self.root)

    @property
    def name(self) -> str:
        """The adapter name a server loads it under and a request sends as ``model``."""
        return NAME_PREFIX + self.repo_id

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def repos_dir(home: str | os.PathLike[str] | None = None) -> Path:
    return cache_root(home) / REPOS_DIR


def repo_id(root: str | os.PathLike[str]) -> str:
    """Stable id of a repository root: ``<folder name>-<12 hex of sha256(resolved path)>``."""
    resolved = str(Path(root).expanduser().resolve())
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(resolved).name).strip("._") or "root"
    return f"{slug[:40]}-{hashlib.sha256(resolved.encode()).hexdigest()[:12]}"


def promote_repo_adapter(
    root: str | os.PathLike[str], src_dir: str | os.PathLike[str], base_model: str,
    metrics: Mapping[str, Any] | None = None, home: str | os.PathLike[str] | None = None,
) -> RepoAdapter:
    """Copy the peft adapter in ``src_dir`` (a folder or a link to one) to ``root``'s slot and make it current.

    Atomic for readers: the files go to a new version folder first and the ``current`` link is replaced with
    ``os.replace``. ValueError when ``root`` is not a folder or ``src_dir`` holds no peft adapter.
    """
    root_path = Path(root).expanduser().resolve()
    src = Path(os.path.realpath(Path(src_dir).expanduser()))
    if not root_path.is_dir():
        raise ValueError(f"repository root {root_path} is not a folder")
    if not (src / ADAPTER_CONFIG).is_file() or not any((src / w).is_file() for w in WEIGHTS):
        raise ValueError(f"{src} is not a peft adapter folder ({ADAPTER_CONFIG} and {WEIGHTS[0]} expected)")
    slot = repos_dir(home) / repo_id(root_path)
    slot.mkdir(parents=True, exist_ok=True)
    version = Path(tempfile.mkdtemp(prefix=time.strftime("v-%Y%m%dT%H%M%S-", time.gmtime()), dir=slot))
    shutil.copytree(src, version, dirs_exist_ok=True, ignore=shutil.ignore_patterns(ENTRY))
    entry = RepoAdapter(root=str(root_path), adapter_dir=str(slot / CURRENT), base_model=str(base_model),
                        promoted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        metrics=dict(metrics or {}))
    _write_atomic(version / ENTRY, json.dumps(entry.to_json(), indent=2, sort_keys=True) + "\n")
    previous = _current_version(slot)
    link = slot / f".{CURRENT}-{version.name}"
    os.symlink(version.name, link)
    os.replace(link, slot / CURRENT)
    _delete_old_versions(slot, keep={version.name, previous})
    _write_atomic(repos_dir(home) / STAMP, f"{time.time_ns()} {entry.root}\n")
    return entry


def read_repo_adapter(slot: Path) -> RepoAdapter | None:
    """The entry of one ``<repo id>`` folder, or None when it has no complete current version."""
    try:
        data = json.loads((slot / CURRENT / ENTRY).read_text())
        return RepoAdapter(root=data["root"], adapter_dir=str(slot / CURRENT), base_model=data["base_model"],
                           promoted_at=data["promoted_at"], metrics=dict(data.get("metrics") or {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_repo_adapters(home: str | os.PathLike[str] | None = None) -> list[RepoAdapter]:
    """Every registered repository adapter, sorted by root."""
    try:
        slots = [p for p in repos_dir(home).iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    entries = (read_repo_adapter(slot) for slot in slots)
    return sorted((e for e in entries if e is not None), key=lambda e: e.root)


def match_repo_adapter(path: str | os.PathLike[str], entries: list[RepoAdapter]) -> RepoAdapter | None:
    """The entry whose root is the nearest ancestor of ``path`` (or ``path`` itself); None outside all roots."""
    target = Path(path).expanduser().resolve()
    inside = [e for e in entries if target.is_relative_to(e.root)]
    return max(inside, key=lambda e: len(Path(e.root).parts), default=None)


def find_repo_adapter(path: str | os.PathLike[str], home: str | os.PathLike[str] | None = None) -> RepoAdapter | None:
    """The adapter of the nearest registered root at or above ``path`` (a document or folder), or None."""
    return match_repo_adapter(path, list_repo_adapters(home))


def registry_version(home: str | os.PathLike[str] | None = None) -> tuple[int, int] | None:
    """(inode, mtime ns) of the STAMP file: changes on every promotion; None before the first. One stat."""
    try:
        st = (repos_dir(home) / STAMP).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


class RepoAdapterIndex:
    """The registered adapters, re-read only when ``registry_version`` changes (cheap to ask per request)."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = home
        self.version: tuple[int, int] | None = None
        self.entries: list[RepoAdapter] = []
        self._loaded = False

    def refresh(self) -> bool:
        """Re-read the registry if it changed since the last call; True when it did."""
        now = registry_version(self.home)
        if self._loaded and now == self.version:
            return False
        self.version, self.entries, self._loaded = now, list_repo_adapters(self.home), True
        return True

    def find(self, path: str | os.PathLike[str]) -> RepoAdapter | None:
        self.refresh()
        return match_repo_adapter(path, self.entries)


def _current_version(slot: Path) -> str | None:
    try:
        return os.readlink(slot / CURRENT)
    except OSError:
        return None


def _delete_old_versions(slot: Path, keep: set[str | None]) -> None:
    for child in slot.iterdir():
        if child.name.startswith("v-") and child.name not in keep and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
