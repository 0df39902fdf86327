"""Hot reload of a LoRA adapter: follow a folder (or the RL loop's ``promoted`` symlink) and reload on change.

The RL loop promotes an adapter by atomically re-pointing ``RUN_DIR/promoted`` at ``adapters/iter-NNNN``;
a server or language server started with that path picks up each promotion within one poll. The engine
keys its prefix cache by adapter name and version, so KV computed under the old weights is never reused.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def fingerprint(path: Path) -> tuple[str, int, int] | None:
    """(resolved folder, weights mtime ns, size) — changes when the adapter is re-pointed or rewritten."""
    real = Path(os.path.realpath(path))
    for name in WEIGHTS:
        try:
            st = (real / name).stat()
        except OSError:
            continue
        return str(real), st.st_mtime_ns, st.st_size
    return None


class AdapterWatcher:
    """Polls ``path`` every ``interval_s`` and calls ``apply(path)`` when its fingerprint changes.

    A failed apply is logged and retried at the next change; the engine keeps serving the previous weights.
    """

    def __init__(self, path: Path, apply: Callable[[Path], object], interval_s: float = 2.0) -> None:
        self.path, self.apply, self.interval_s = Path(path), apply, interval_s
        self.current = fingerprint(self.path)
        self.num_reloads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="codeloop-adapter-watch", daemon=True)

    def start(self) -> AdapterWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s * 2)

    def poll(self) -> bool:
        """Apply the adapter if it changed since the last poll; True when a reload happened."""
        now = fingerprint(self.path)
        if now is None or now == self.current:
            return False
        try:
            key = self.apply(self.path)
        except Exception as exc:  # keep serving the old weights; try again on the next change
            logger.warning("adapter %s changed but could not be loaded: %s", self.path, exc)
            self.current = now
            return False
        self.current = now
        self.num_reloads += 1
        logger.info("adapter reloaded from %s (%s)", now[0], key)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()
