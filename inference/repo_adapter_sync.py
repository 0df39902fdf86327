"""Keep an engine's loaded adapters in step with the per-repository registry (``repo_adapters.py``). No torch.

``codeloop serve`` loads every registered adapter at start and polls (``start``); the language server's
in-process engine loads a repository's adapter when a document of it is first completed (``served``). Both
notice a promotion by one stat of the registry's STAMP (``RepoAdapterIndex``), and only then stat the
adapter folders: a promoted version (a new folder behind ``current``) is loaded again under the same name,
so new requests get the new weights and requests in flight finish with the old ones, without a restart.
Invariant: ``loaded[name]`` is the fingerprint of the weights the engine serves under ``name``; an adapter
the engine refused is not retried until its folder changes (the engine keeps what it served before).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from inference.adapter_watch import fingerprint
from inference.repo_adapters import RepoAdapter, RepoAdapterIndex

logger = logging.getLogger(__name__)
Fingerprint = tuple[str, int, int]


class RepoAdapterSync:
    """Loads registered repository adapters into an engine with ``load(path, name)`` / ``unload(name)``."""

    def __init__(self, load: Callable[[Path, str], object], unload: Callable[[str], object] | None = None,
                 home: str | os.PathLike[str] | None = None) -> None:
        self.load, self.unload = load, unload
        self.index = RepoAdapterIndex(home)
        self.loaded: dict[str, Fingerprint] = {}
        self.roots: dict[str, str] = {}
        """name -> repository root of each adapter the engine serves."""
        self._refused: dict[str, Fingerprint] = {}
        self._checked: dict[str, tuple[int, int] | None] = {}
        """name -> registry version at which its folder was last compared with ``loaded``."""
        self._synced = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def find(self, path: str | os.PathLike[str]) -> RepoAdapter | None:
        """The registered adapter of the nearest root above ``path`` (one stat when nothing changed)."""
        return self.index.find(path)

    def is_current(self, entry: RepoAdapter) -> bool:
        """True when ``entry`` was checked since the registry last changed (``served`` needs no I/O)."""
        return self.index.version is not None and self._checked.get(entry.name) == self.index.version

    def served(self, entry: RepoAdapter) -> str | None:
        """``entry``'s adapter name if the engine serves it, loading or reloading it first when its folder
        changed (may take a while: call off the event loop unless ``is_current``). None: refused."""
        with self._lock:
            if not self.is_current(entry):
                self._ensure(entry)
            return entry.name if entry.name in self.loaded else None

    def sync_all(self) -> bool:
        """Load every registered adapter that changed and unload the ones no longer registered (when the
        registry changed since the last call); True when it had changed."""
        with self._lock:
            if not self.index.refresh() and self._synced:
                return False
            names = {e.name for e in self.index.entries}
            for entry in self.index.entries:
                self._ensure(entry)
            for name in sorted(set(self.loaded) - names):
                if self.unload is not None:
                    self.unload(name)
                self.loaded.pop(name)
                self.roots.pop(name, None)
                logger.info("repository adapter %s unregistered: unloaded", name)
            self._synced = True
            return True

    def start(self, interval_s: float = 2.0) -> RepoAdapterSync:
        """Sync now and then every ``interval_s`` in a daemon thread (``codeloop serve``)."""
        self.sync_all()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), name="codeloop-repo-adapters",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.sync_all()
            except Exception as exc:  # noqa: BLE001 - a bad registry entry must not stop the poller
                logger.warning("repository adapters: sync failed: %s", exc)

    def _ensure(self, entry: RepoAdapter) -> None:
        self._checked[entry.name] = self.index.version
        now = fingerprint(Path(entry.adapter_dir))
        if now is None or now == self.loaded.get(entry.name) or now == self._refused.get(entry.name):
            return
        try:
            key = self.load(Path(entry.adapter_dir), entry.name)
        except Exception as exc:  # noqa: BLE001 - the engine keeps serving what it had; retried on change
            self._refused[entry.name] = now
            logger.warning("repository adapter %s for %s not loaded: %s", entry.name, entry.root, exc)
            return
        self.loaded[entry.name], self.roots[entry.name] = now, entry.root
        logger.info("repository adapter %s for %s loaded from %s (%s)", entry.name, entry.root, now[0], key)
