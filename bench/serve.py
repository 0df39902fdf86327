"""``codeloop bench serve``: one shared server under 1, 4, 16 concurrent streaming clients, against the
same clients served one at a time; time to first token, aggregate tokens/s and the server's memory.

The server runs as a subprocess (the only heavy process); clients are asyncio tasks in this process.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import httpx

from inference.server.launcher import SERVE_ARGV, free_port, is_healthy, stop_process
from lsp.percentile import percentile

SHAPES_0_5B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                   num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768)
RANDOM_0_5B_DIR = Path("~/.cache/codeloop/bench/random-qwen2-0.5b")
REQUEST_TIMEOUT_S = 3600.0
"""Per request: four 8k-token prompts prefilled together on two loaded cores take longer than 10 minutes."""


@dataclass(frozen=True)
class BenchSpec:
    model: str | None = None
    levels: tuple[int, ...] = (1, 4, 16)
    requests_per_client: int = 2
    prompt_tokens: int = 256
    max_tokens: int = 32
    dtype: str = "auto"
    serve_args: tuple[str, ...] = ()
    """Extra ``codeloop serve`` flags (``--kv-dtype int8``, ``--sessions 4``...)."""


def resolve_bench_model(model: str | None) -> tuple[str, str]:
    """(path or name, description): the given model, the pulled 0.5B, or a random 0.5B-shaped model."""
    if model is not None:
        return model, model
    from inference import catalog, model_specs

    if catalog.is_pulled(model_specs.DEFAULT_MODEL):
        return model_specs.DEFAULT_MODEL, model_specs.DEFAULT_MODEL
    from inference.models.tiny import make_tiny_model

    path = make_tiny_model(RANDOM_0_5B_DIR.expanduser(), arch="qwen2", tie_word_embeddings=True,
                           init_std=0.02, **SHAPES_0_5B)
    return str(path), "random-weight Qwen2 in Qwen2.5-Coder-0.5B shapes"


def _rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


async def _one_request(client: httpx.AsyncClient, prompt: list[int], spec: BenchSpec) -> dict:
    body = {"model": "bench", "prompt": prompt, "max_tokens": spec.max_tokens, "temperature": 0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    ttft = None
    tokens = 0
    async with client.stream("POST", "/v1/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and ttft is None:
                ttft = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return {"ttft_s": ttft or 0.0, "tokens": tokens, "latency_s": time.perf_counter() - start}


async def _run_level(url: str, prompts: list[list[list[int]]], spec: BenchSpec, concurrency: int) -> dict:
    """``len(prompts)`` clients, each sending its prompts in turn; at most ``concurrency`` at once."""
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:

        async def client_loop(own: list[list[int]]) -> list[dict]:
            async with limit:
                return [await _one_request(client, p, spec) for p in own]

        start = time.perf_counter()
        results = await asyncio.gather(*(client_loop(own) for own in prompts))
        wall = time.perf_counter() - start
    flat = [r for rs in results for r in rs]
    ttfts = sorted(r["ttft_s"] for r in flat)
    tokens = sum(r["tokens"] for r in flat)
    return {"clients": len(prompts), "concurrency": concurrency, "requests": len(flat), "tokens": tokens,
            "wall_s": round(wall, 3), "tokens_per_s": round(tokens / wall, 2),
            "ttft_p50_s": round(percentile(ttfts, 0.5), 4), "ttft_p95_s": round(percentile(ttfts, 0.95), 4)}


def _prompts(num_clients: int, spec: BenchSpec, vocab: int, seed: int) -> list[list[list[int]]]:
    rng = random.Random(seed)
    return [[[rng.randrange(10, vocab) for _ in range(spec.prompt_tokens)] for _ in range(spec.requests_per_client)]
            for _ in range(num_clients)]


def run(spec: BenchSpec, progress: bool = True) -> dict:
    """Start the server, run every level and the one-at-a-time baseline, stop the server."""
    model, description = resolve_bench_model(spec.model)
    args = ["--model", model, "--served-model-name", "bench", "--dtype", spec.dtype,
            "--max-num-seqs", str(max(64, max(spec.levels))), *spec.serve_args]
    with served(args) as (url, proc):
        rss_loaded = _rss_kib(proc.pid)
        vocab = 300  # ids every tokenizer here has (the tiny test tokenizer has 384)
        asyncio.run(_run_level(url, _prompts(1, BenchSpec(requests_per_client=1, max_tokens=4), vocab, 99),
                               spec, 1))  # warm-up
        levels = []
        for n in spec.levels:
            if progress:
                print(f"bench serve: {n} concurrent clients...", file=sys.stderr)
            levels.append(asyncio.run(_run_level(url, _prompts(n, spec, vocab, n), spec, n)))
        n_max = max(spec.levels)
        if progress:
            print(f"bench serve: {n_max} clients served one at a time...", file=sys.stderr)
        one_at_a_time = asyncio.run(_run_level(url, _prompts(n_max, spec, vocab, 1000 + n_max), spec, 1))
        rss_after = _rss_kib(proc.pid)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
    shared = next(level for level in levels if level["clients"] == n_max)
    rss_mib = rss_after.get("VmHWM", 0) / 1024
    return {
        "bench": "serve", "model": description, "spec": asdict(spec),
        "levels": levels, "one_at_a_time": one_at_a_time,
        "speedup_shared_vs_one_at_a_time": round(shared["tokens_per_s"] / one_at_a_time["tokens_per_s"], 2),
        "memory": {"server_rss_mib_loaded": round(rss_loaded.get("VmRSS", 0) / 1024, 1),
                   "server_rss_mib_after": round(rss_after.get("VmRSS", 0) / 1024, 1),
                   "server_peak_rss_mib": round(rss_mib, 1),
                   f"estimated_{n_max}_processes_rss_mib": round(n_max * rss_loaded.get("VmRSS", 0) / 1024, 1),
                   "note": f"{n_max} separate engines are estimated as {n_max} x one loaded server (not launched:"
                           " one heavy process at a time)"},
        "batch_size_histogram": _histogram(metrics, "codeloop_batch_size"),
    }


@contextmanager
def served(serve_args: list[str], timeout_s: float = 900) -> Iterator[tuple[str, subprocess.Popen]]:
    """``codeloop serve *serve_args`` as a subprocess on a free loopback port, healthy: (its URL, the process)
    until the block ends, then stopped."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on a full pipe
    proc = subprocess.Popen([sys.executable, *SERVE_ARGV, "--port", str(port), *serve_args],
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        _wait_healthy(proc, url, log, timeout_s)
        yield url, proc
    finally:
        stop_process(proc, grace_s=60)
        log.close()


def _wait_healthy(proc: subprocess.Popen, url: str, log: IO[bytes], timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"bench server exited ({proc.returncode}): {err}")
        if is_healthy(url, timeout_s=1.0):
            return
        time.sleep(0.5)
    raise RuntimeError("bench server did not become healthy")


def _histogram(metrics_text: str, name: str) -> dict[str, float]:
    out = {}
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}_bucket") or line.startswith(f"{name}_count") or line.startswith(f"{name}_sum"):
            key, _, value = line.rpartition(" ")
            out[key.replace(name, "")] = float(value)
    return out


def summary(result: dict) -> str:
    lines = [f"model: {result['model']}"]
    for level in [*result["levels"], result["one_at_a_time"]]:
        lines.append(f"clients={level['clients']:>3} concurrency={level['concurrency']:>3} "
                     f"tok/s={level['tokens_per_s']:>8} ttft p50={level['ttft_p50_s']}s p95={level['ttft_p95_s']}s")
    lines.append(f"shared vs one at a time: {result['speedup_shared_vs_one_at_a_time']}x")
    lines.append(f"memory: {json.dumps(result['memory'])}")
    return "\n".join(lines)
