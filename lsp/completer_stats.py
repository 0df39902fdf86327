"""The completer's counters and bounded latency samples, reported by ``codeloop/stats`` and the benchmarks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lsp.percentile import percentile


@dataclass
class CompleterStats:
    num_requests: int = 0
    num_engine: int = 0
    num_exact_hits: int = 0
    num_typed_through_hits: int = 0
    num_superseded: int = 0
    num_cancelled: int = 0
    num_empty: int = 0
    num_errors: int = 0
    num_checked: int = 0
    """Block suggestions chosen among k checked candidates."""
    num_checked_passing: int = 0
    num_checked_late: int = 0
    """Shown unmarked at the deadline, their result sent later."""
    latency_ms: list[float] = field(default_factory=list)
    context_ms: list[float] = field(default_factory=list)
    engine_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in vars(self).items() if not k.endswith("_ms")}
        for name in ("latency_ms", "context_ms", "engine_ms"):
            values = getattr(self, name)[-1000:]
            out[f"p50_{name}"], out[f"p95_{name}"] = percentile(values, 0.5), percentile(values, 0.95)
        out["engine_latency_ms"] = self.latency_ms[-1000:]  # requests the engine answered, oldest first
        return out

    def record(self, name: str, started: float) -> None:
        """Append the time since ``started`` (perf_counter seconds) to the ``name`` list, bounded."""
        values = getattr(self, name)
        values.append((time.perf_counter() - started) * 1000)
        del values[:-2000]
