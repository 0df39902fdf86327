"""Helpers for server tests: a live server over the tiny random model (in-process or a real ``codeloop serve``
subprocess), and /metrics parsing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from inference.config import EngineConfig
from inference.server.backend import EngineBackend
from inference.server.config import ServerConfig
from inference.server.launcher import free_port, is_healthy, stop_process
from inference.server.uvicorn_runner import ThreadedServer

MODEL = "tiny"


@contextmanager
def live_server(model_dir: Path, **config: object) -> Iterator[ThreadedServer]:
    """The tiny model behind a real uvicorn on 127.0.0.1:<free port>; the engine is shut down after."""
    backend = EngineBackend.from_config(EngineConfig(model=str(model_dir), dtype="float32", max_num_seqs=32))
    server_config = ServerConfig(**{"model_name": MODEL, "port": 0, **config})  # type: ignore[arg-type]
    with ThreadedServer(backend, server_config) as server:
        yield server


@contextmanager
def serve_subprocess(model_dir: Path, *serve_args: str, start_timeout_s: float = 180.0) -> Iterator[str]:
    """``codeloop serve`` as a subprocess on a free loopback port; its URL once /health answers. Terminated
    (killed if it does not stop) after."""
    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "codeloop", "serve", "--model", str(model_dir), "--port",
                             url.rsplit(":", 1)[1], *serve_args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not is_healthy(url, timeout_s=1.0):
            assert proc.poll() is None, f"codeloop serve exited: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, f"codeloop serve not healthy after {start_timeout_s:.0f} s"
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, grace_s=30)


def dead_pid() -> int:
    """The pid of a process that has exited (for stale lock / record files)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Every sample of /metrics as ``name{label=value,...}`` -> value."""
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=30).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def wait_idle(url: str, headers: dict[str, str] | None = None, timeout_s: float = 20.0) -> dict[str, float]:
    """Poll /metrics until no request is in flight and no KV block is owned; return the last scrape."""
    deadline = time.monotonic() + timeout_s
    while True:
        metrics = scrape(url, headers)
        idle = (metrics["codeloop_kv_blocks_used"] == 0 and metrics["codeloop_running_sequences"] == 0
                and metrics["codeloop_requests_in_flight"] == 0 and metrics["codeloop_queue_length"] == 0)
        if idle or time.monotonic() > deadline:
            return metrics
        time.sleep(0.05)
