"""The engine as the server sees it: a small protocol, and the adapter over ``AsyncEngine``.

The server never reaches into the engine beyond this surface, so tests can drive the HTTP layer with
the real engine (tiny random model) and nothing in the app depends on engine internals.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inference.async_engine import AsyncEngine
from inference.config import EngineConfig
from inference.engine import Engine
from inference.repo_adapter_sync import RepoAdapterSync
from inference.request import FinishReason, Priority, RequestOutput
from inference.sampling import SamplingParams


@dataclass(frozen=True)
class EngineSnapshot:
    """Engine state for /metrics and /health, read at scrape time."""

    num_waiting: int = 0
    num_running: int = 0
    kv_blocks_used: int = 0
    """Blocks owned by live sequences (0 when idle: the invariant the abort tests check)."""
    kv_blocks_cached: int = 0
    """Unreferenced blocks kept for prefix reuse."""
    kv_blocks_total: int = 0
    prefix_cache_hit_rate: float = 0.0
    """Cached prompt tokens / prompt tokens looked up, since start."""


class ServingEngine(Protocol):
    """What the HTTP layer needs: a tokenizer, a context limit, streamed generation, abort, stats."""

    @property
    def tokenizer(self) -> Any: ...

    @property
    def max_model_len(self) -> int: ...

    def generate(
        self, prompt: list[int], params: SamplingParams, *, priority: Priority, request_id: str,
        adapter_id: str | None = None,
    ) -> AsyncIterator[RequestOutput]: ...

    def adapters(self) -> dict[str, str]:
        """Loaded LoRA adapters, name -> key (requests pick one by name)."""
        ...

    def adapter_roots(self) -> dict[str, str]:
        """Per-repository adapters among them: name -> the repository root they serve."""
        ...

    def abort(self, request_id: str) -> None: ...

    def snapshot(self) -> EngineSnapshot: ...

    def drain_batch_sizes(self) -> list[int]:
        """Requests per engine step since the previous call (for the batch-size histogram)."""
        ...

    def shutdown(self) -> None: ...


class ObservedEngine(Engine):
    """An ``Engine`` that also records how many requests advanced in each step (batch-size metric).

    Only ``step()`` is extended; the counts are read from another thread through ``drain_batch_sizes``.
    """

    def __init__(self, config: EngineConfig, runner: Any = None) -> None:
        super().__init__(config, runner)
        self._batch_sizes: list[int] = []
        self._batch_lock = threading.Lock()

    def step(self) -> list[RequestOutput]:
        outputs = super().step()
        advanced = sum(1 for out in outputs if not _only_aborted(out))
        if advanced:
            with self._batch_lock:
                if len(self._batch_sizes) < _MAX_PENDING_BATCH_SIZES:
                    self._batch_sizes.append(advanced)
        return outputs

    def drain_batch_sizes(self) -> list[int]:
        with self._batch_lock:
            sizes, self._batch_sizes = self._batch_sizes, []
        return sizes


_MAX_PENDING_BATCH_SIZES = 100_000
"""Cap between scrapes, so a server nobody scrapes does not grow without bound."""


def _only_aborted(out: RequestOutput) -> bool:
    return all(o.finish_reason is FinishReason.ABORT for o in out.outputs)


class EngineBackend:
    """``ServingEngine`` over an ``AsyncEngine`` whose engine is an ``ObservedEngine``."""

    def __init__(self, async_engine: AsyncEngine) -> None:
        self.async_engine = async_engine
        self._engine = async_engine.engine
        self.repo_sync: RepoAdapterSync | None = None
        """Loads the per-repository adapters of the registry (``serve_repo_adapters``); None: none."""

    @classmethod
    def from_config(cls, config: EngineConfig, runner: Any = None) -> EngineBackend:
        return cls(AsyncEngine(ObservedEngine(config, runner)))

    @property
    def tokenizer(self) -> Any:
        return self.async_engine.tokenizer

    @property
    def max_model_len(self) -> int:
        return int(self._engine.max_model_len)

    def generate(self, prompt: list[int], params: SamplingParams, *, priority: Priority, request_id: str,
                 adapter_id: str | None = None) -> AsyncIterator[RequestOutput]:
        return self.async_engine.generate(prompt, params, priority=priority, request_id=request_id,
                                          adapter_id=adapter_id)

    def adapters(self) -> dict[str, str]:
        return self.async_engine.adapters()

    def adapter_roots(self) -> dict[str, str]:
        return {} if self.repo_sync is None else dict(self.repo_sync.roots)

    def serve_repo_adapters(self, home: str | os.PathLike[str] | None = None,
                            interval_s: float = 2.0) -> RepoAdapterSync:
        """Load every registered per-repository adapter now, and each later promotion within ``interval_s``
        (a poll of one stat); served under ``repo:<repo id>`` names. Stop it with ``repo_sync.stop()``."""
        self.repo_sync = RepoAdapterSync(self._load_repo_adapter, self._unload_repo_adapter, home)
        return self.repo_sync.start(interval_s)

    def _load_repo_adapter(self, path: Path, name: str) -> str:
        return self.async_engine.load_adapter(path, name)

    def _unload_repo_adapter(self, name: str) -> None:
        self.async_engine.call(lambda engine: engine.unload_adapter(name))

    def abort(self, request_id: str) -> None:
        self.async_engine.abort(request_id)

    def snapshot(self) -> EngineSnapshot:
        st = self.async_engine.stats()
        return EngineSnapshot(num_waiting=st.num_waiting, num_running=st.num_running,
                              kv_blocks_used=st.num_blocks_owned, kv_blocks_cached=st.num_blocks_cached,
                              kv_blocks_total=st.num_blocks_total, prefix_cache_hit_rate=st.prefix_hit_rate)

    def drain_batch_sizes(self) -> list[int]:
        drain = getattr(self._engine, "drain_batch_sizes", None)
        return drain() if drain is not None else []

    def shutdown(self) -> None:
        self.async_engine.shutdown()
