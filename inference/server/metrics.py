"""Prometheus metrics of one server (a private ``CollectorRegistry`` per app, never the global one).

Engine gauges (queue, running sequences, KV blocks, prefix-cache hit rate) are read from the engine at
scrape time; latency and throughput are observed per request as tokens stream out.
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from inference.request import RequestOutput
from inference.server.backend import EngineSnapshot

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKENS_PER_S_WINDOW_S = 10.0


class ServerMetrics:
    """All metrics of one app; ``render()`` returns the Prometheus text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.queue_length = Gauge("codeloop_queue_length", "Requests waiting to be scheduled", registry=r)
        self.running = Gauge("codeloop_running_sequences", "Sequences running in the engine", registry=r)
        self.kv_used = Gauge("codeloop_kv_blocks_used", "KV blocks owned by live sequences", registry=r)
        self.kv_cached = Gauge("codeloop_kv_blocks_cached", "Unreferenced KV blocks kept for prefix reuse",
                               registry=r)
        self.kv_total = Gauge("codeloop_kv_blocks_total", "KV blocks in the pool", registry=r)
        self.hit_rate = Gauge("codeloop_prefix_cache_hit_rate", "Prompt tokens served from the prefix cache "
                              "/ prompt tokens looked up", registry=r)
        self.in_flight = Gauge("codeloop_requests_in_flight", "HTTP requests admitted and not done",
                               registry=r)
        self.ttft = Histogram("codeloop_time_to_first_token_seconds", "Arrival to first generated token",
                              buckets=_LATENCY_BUCKETS_S, registry=r)
        self.itl = Histogram("codeloop_inter_token_latency_seconds", "Time between streamed outputs of a "
                             "request", buckets=_LATENCY_BUCKETS_S, registry=r)
        self.batch_size = Histogram("codeloop_batch_size", "Requests advanced per engine step",
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.requests = Counter("codeloop_requests", "Finished HTTP requests", ["endpoint", "outcome"],
                                registry=r)
        self.prompt_tokens = Counter("codeloop_prompt_tokens", "Prompt tokens admitted", registry=r)
        self.generation_tokens = Counter("codeloop_generation_tokens", "Tokens generated", registry=r)
        self.tokens_per_s = Gauge("codeloop_generation_tokens_per_second",
                                  f"Generated tokens per second over the last {TOKENS_PER_S_WINDOW_S:g} s",
                                  registry=r)
        self._recent: deque[tuple[float, int]] = deque()

    def add_generated(self, num_tokens: int, now: float) -> None:
        if num_tokens <= 0:
            return
        self.generation_tokens.inc(num_tokens)
        self._recent.append((now, num_tokens))

    def refresh(self, snapshot: EngineSnapshot, batch_sizes: list[int], now: float | None = None) -> None:
        """Copy engine state into the gauges (called on each scrape)."""
        self.queue_length.set(snapshot.num_waiting)
        self.running.set(snapshot.num_running)
        self.kv_used.set(snapshot.kv_blocks_used)
        self.kv_cached.set(snapshot.kv_blocks_cached)
        self.kv_total.set(snapshot.kv_blocks_total)
        self.hit_rate.set(snapshot.prefix_cache_hit_rate)
        for size in batch_sizes:
            self.batch_size.observe(size)
        now = time.monotonic() if now is None else now
        while self._recent and self._recent[0][0] < now - TOKENS_PER_S_WINDOW_S:
            self._recent.popleft()
        self.tokens_per_s.set(sum(n for _, n in self._recent) / TOKENS_PER_S_WINDOW_S)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def track(self, endpoint: str) -> RequestTracker:
        return RequestTracker(self, endpoint)


class RequestTracker:
    """Timing of one request: first-token latency, gaps between outputs, tokens generated."""

    def __init__(self, metrics: ServerMetrics, endpoint: str) -> None:
        self._metrics = metrics
        self._endpoint = endpoint
        self._start = time.monotonic()
        self._last: float | None = None
        self._num_tokens: dict[int, int] = {}
        self._done = False
        metrics.in_flight.inc()

    def admitted(self, num_prompt_tokens: int) -> None:
        self._metrics.prompt_tokens.inc(num_prompt_tokens)

    def on_output(self, out: RequestOutput) -> int:
        """Record one engine output; return how many new tokens it carried."""
        now = time.monotonic()
        new = 0
        for sample in out.outputs:
            new += len(sample.token_ids) - self._num_tokens.get(sample.index, 0)
            self._num_tokens[sample.index] = len(sample.token_ids)
        if new > 0:
            if self._last is None:
                self._metrics.ttft.observe(now - self._start)
            else:
                self._metrics.itl.observe(now - self._last)
            self._last = now
            self._metrics.add_generated(new, now)
        return new

    @property
    def num_generated(self) -> int:
        return sum(self._num_tokens.values())

    def done(self, outcome: str) -> None:
        """Idempotent: the first call counts."""
        if self._done:
            return
        self._done = True
        self._metrics.in_flight.dec()
        self._metrics.requests.labels(self._endpoint, outcome).inc()
