"""``codeloop bench infill``: a typing session as llama.vscode sends it, through ``/infill``, side by side.

The same function as ``bench lsp`` is typed into a real file (Python's ``textwrap.py`` unless --file); after
each keystroke the request llama.vscode's ``createRequestPayload`` builds (up to 256 lines above the cursor,
the rest of the line and up to 64 lines below, the current line up to the cursor as ``prompt``, ``n_indent``,
``cache_prompt``) goes to each server in turn and its answer is awaited: the time until the suggestion of
that keystroke shows when the user stops there. Servers: ``codeloop serve`` under each ``--fim-order`` and
llama.cpp's ``llama-server`` on the model's GGUF, with and without ``--spm-infill``; both keep the previous
prompt in their cache (ours: the prefix cache; llama-server: its slot). Reported per server, after one
warm-up request: latency p50/p95, the prompt tokens computed per keystroke (``timings.prompt_n``), the time to
the first token (``timings.prompt_ms``), tokens generated and blank answers (llama-server's ``--spm-infill``
is ``<SUF>suffix<PRE>prefix<MID>``, a layout Qwen2.5-Coder was not trained on: its answers differ; ours is
StarCoder's ``<PRE><SUF>suffix<MID>prefix``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.editor_session import FUNCTION, typing_document
from inference.server.launcher import SERVE_ARGV, free_port, is_healthy, stop_process
from lsp.percentile import percentile

N_PREFIX, N_SUFFIX = 256, 64
"""llama.vscode's defaults: lines above and below the cursor it sends."""


@dataclass(frozen=True)
class Keystroke:
    lines: list[str]
    line: int
    col: int


def keystrokes(path: Path, count: int | None) -> Iterator[Keystroke]:
    """The document after each typed character of ``FUNCTION`` (the first one: before any), cursor after it."""
    lines, insert_at = typing_document(path)
    line, col = insert_at + 1, 0
    yield Keystroke(list(lines), line, col)
    for ch in FUNCTION[:count] if count else FUNCTION:
        text = lines[line]
        if ch == "\n":
            lines[line:line + 1] = [text[:col], text[col:]]
            line, col = line + 1, 0
        else:
            lines[line] = text[:col] + ch + text[col:]
            col += 1
        yield Keystroke(list(lines), line, col)


def llama_vscode_body(key: Keystroke, n_predict: int) -> dict[str, Any]:
    """``createRequestPayload`` with llama.vscode's defaults; one completion, greedy (comparable answers)."""
    text = key.lines[key.line]
    above = key.lines[max(0, key.line - N_PREFIX): key.line]
    below = key.lines[key.line + 1: key.line + 1 + N_SUFFIX]
    line_prefix = text[: key.col]
    body = {"input_prefix": "\n".join(above) + "\n", "input_suffix": text[key.col:] + "\n" + "\n".join(below) + "\n",
            "input_extra": [], "prompt": "" if not line_prefix.strip(" \t") else line_prefix,
            "n_predict": n_predict, "temperature": 0.0, "top_k": 40, "top_p": 0.99, "stream": False,
            "cache_prompt": True, "t_max_prompt_ms": 500, "t_max_predict_ms": 2500}
    indent = len(text) - len(text.lstrip())
    if indent:
        body["n_indent"] = indent
    return body


def session(url: str, keys: list[Keystroke], n_predict: int) -> dict[str, Any]:
    """Every keystroke's request to ``url`` in turn (the first is a warm-up, not counted)."""
    latencies, computed, first_token, predicted, shown = [], [], [], [], []
    with httpx.Client(base_url=url, timeout=600.0) as http:
        for i, key in enumerate(keys):
            start = time.perf_counter()
            reply = http.post("/infill", json=llama_vscode_body(key, n_predict))
            seconds = time.perf_counter() - start
            reply.raise_for_status()
            data = reply.json()
            if i == 0:
                continue
            timings = data.get("timings") or {}
            latencies.append(seconds * 1000)
            computed.append(float(timings.get("prompt_n", 0)))
            first_token.append(float(timings.get("prompt_ms", 0.0)))
            predicted.append(float(timings.get("predicted_n", 0)))
            shown.append(data.get("content") or "")
    return {"keystrokes": len(latencies), "latency_ms": _spread(latencies), "prompt_tokens_computed": _spread(computed),
            "prompt_ms": _spread(first_token), "tokens_predicted": _spread(predicted),
            "empty_answers": sum(not s.strip() for s in shown), "shown": shown}


def _spread(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "max": max(values)} if values else {}


@contextmanager
def codeloop_server(model: str, serve_args: list[str]) -> Iterator[str]:
    """``codeloop serve`` as a subprocess on a free loopback port, until the block ends."""
    url = f"http://127.0.0.1:{free_port()}"
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a pipe nobody reads would stall the server
        proc = subprocess.Popen([sys.executable, *SERVE_ARGV, "--model", model, "--port", url.rsplit(":", 1)[1],
                                 *serve_args], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600
            while not is_healthy(url, timeout_s=1.0):
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"codeloop serve exited: {log.read().decode(errors='replace')[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("codeloop serve not healthy after 600 s")
                time.sleep(0.5)
            yield url
        finally:
            stop_process(proc, grace_s=30)


def run(model: str, path: Path, count: int | None, n_predict: int, orders: list[str], serve_args: list[str],
        threads: int, peer: bool) -> dict[str, Any]:
    """Each server in turn over the same keystrokes; the peer's configurations when its build is there."""
    from bench import llama_cpp
    from bench.output import machine_info
    from inference.catalog import resolve_model_path

    keys = list(keystrokes(path, count))
    servers: dict[str, dict[str, Any]] = {}
    for order in orders:
        with codeloop_server(model, ["--fim-order", order, "--num-threads", str(threads), *serve_args]) as url:
            servers[f"codeloop {order}"] = session(url, keys, n_predict)
    gguf = llama_cpp.find_gguf(Path(resolve_model_path(model)))
    why_not = "not asked" if not peer else llama_cpp.missing(Path(resolve_model_path(model)))
    if why_not is None and gguf is not None:
        for order, extra in (("psm", ()), ("spm", ("--spm-infill",))):
            with llama_cpp.LlamaServer(gguf, threads, extra_args=extra) as server:
                servers[f"llama-server {order}"] = session(server.url, keys, n_predict)
    ratios = {f"{name} / {other}": servers[other]["latency_ms"]["p50"] / servers[name]["latency_ms"]["p50"]
              for name in servers if name.startswith("codeloop") for other in servers if other != name}
    return {"model": model, "file": str(path), "n_predict": n_predict, "serve_args": serve_args,
            "peer": why_not or "llama-server", "servers": servers, "p50_speedup": ratios, **machine_info()}
