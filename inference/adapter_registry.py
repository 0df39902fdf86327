"""Which LoRA adapters an engine serves: names, versions, the default, and when old weights can go. No torch.

Every load gets a fresh key ``name@version`` (versions never repeat within an engine), and that key is the
request's ``adapter_id`` all the way down: the scheduler's sequences, the prefix cache's block hashes (so KV
computed under one set of weights is never reused under another) and the runner's per-token deltas.
Invariant: a key is resident (its weights in the runner) while it is the current key of a name or some
unfinished sequence uses it; ``collect`` names the keys that are neither, so the engine can drop them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable


class AdapterRegistry:
    """Names -> current keys, the resident keys, and the default adapter of requests that name none."""

    def __init__(self) -> None:
        self.current: dict[str, str] = {}
        """name -> key of its newest load."""
        self.resident: set[str] = set()
        self.default: str | None = None
        """Name used by requests without an adapter id (``Engine.set_adapter``); None: the base model."""
        self._versions = itertools.count(1)

    def new_key(self, name: str) -> str:
        if not name or "@" in name:
            raise ValueError(f"adapter name must be non-empty and without '@', got {name!r}")
        return f"{name}@{next(self._versions)}"

    def add(self, name: str, key: str) -> None:
        """Make ``key`` the current version of ``name`` (the previous one stays resident while used)."""
        self.current[name] = key
        self.resident.add(key)

    def remove(self, name: str) -> None:
        """New requests can no longer name ``name``; unknown names are ignored."""
        self.current.pop(name, None)
        if self.default == name:
            self.default = None

    def resolve(self, adapter_id: str | None) -> str | None:
        """The key a new request runs under: a loaded name's current key, a current key itself, or the
        default adapter's key for None. ValueError for anything else."""
        if adapter_id is None:
            return None if self.default is None else self.current[self.default]
        if adapter_id in self.current:
            return self.current[adapter_id]
        if adapter_id in self.current.values():
            return adapter_id
        loaded = ", ".join(sorted(self.current)) or "none"
        raise ValueError(f"adapter_id={adapter_id!r} is not loaded (loaded: {loaded})")

    def collect(self, in_use: Iterable[str | None]) -> list[str]:
        """Resident keys that no name points at and no unfinished sequence uses (removed from ``resident``)."""
        keep = set(self.current.values()) | {k for k in in_use if k is not None}
        stale = sorted(self.resident - keep)
        self.resident -= set(stale)
        return stale
