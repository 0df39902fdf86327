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

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.editor_session import FUNCTION, typing_document
from bench.serve import served
from evals.repo.llama_vscode import Cursor, VscodeSettings, infill_request
from lsp.percentile import percentile

T_MAX_PREDICT_MS = 2500
"""llama.vscode's time budget as configuration.ts starts it; 16 greedy tokens never reach it here."""


def keystrokes(path: Path, count: int | None) -> Iterator[Cursor]:
    """The document after each typed character of ``FUNCTION`` (the first one: before any), cursor after it."""
    lines, insert_at = typing_document(path)
    line, col = insert_at + 1, 0
    yield Cursor(tuple(lines), line, col)
    for ch in FUNCTION[:count] if count else FUNCTION:
        text = lines[line]
        if ch == "\n":
            lines[line:line + 1] = [text[:col], text[col:]]
            line, col = line + 1, 0
        else:
            lines[line] = text[:col] + ch + text[col:]
            col += 1
        yield Cursor(tuple(lines), line, col)


def llama_vscode_body(cursor: Cursor, n_predict: int) -> dict[str, Any]:
    """llama.vscode's request (``evals.repo.llama_vscode``) asked greedy, so that the servers' answers compare:
    without its sampler chain (which has no temperature stage) the server's default chain applies
    temperature 0."""
    body = infill_request(cursor, [], VscodeSettings(n_predict=n_predict, t_max_predict_ms=T_MAX_PREDICT_MS)).body
    del body["samplers"]
    return {**body, "temperature": 0.0}


def session(url: str, keys: list[Cursor], n_predict: int) -> dict[str, Any]:
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


def run(model: str, path: Path, count: int | None, n_predict: int, orders: list[str], serve_args: list[str],
        threads: int, peer: bool) -> dict[str, Any]:
    """Each server in turn over the same keystrokes; the peer's configurations when its build is there."""
    from bench import llama_cpp
    from bench.output import machine_info
    from inference.catalog import resolve_model_path

    keys = list(keystrokes(path, count))
    servers: dict[str, dict[str, Any]] = {}
    for order in orders:
        with served(["--model", model, "--fim-order", order, "--num-threads", str(threads), *serve_args],
                    timeout_s=600) as (url, _):
            servers[f"codeloop {order}"] = session(url, keys, n_predict)
    model_dir = Path(resolve_model_path(model))
    why_not = llama_cpp.missing(model_dir) if peer else "not asked"
    if why_not is None:
        gguf = llama_cpp.find_gguf(model_dir)  # there: missing() found it
        for order, extra in (("psm", ()), ("spm", ("--spm-infill",))):
            with llama_cpp.LlamaServer(gguf, threads, extra_args=extra) as server:
                servers[f"llama-server {order}"] = session(server.url, keys, n_predict)
    ratios = {f"{name} / {other}": servers[other]["latency_ms"]["p50"] / servers[name]["latency_ms"]["p50"]
              for name in servers if name.startswith("codeloop") for other in servers if other != name}
    return {"model": model, "file": str(path), "n_predict": n_predict, "serve_args": serve_args,
            "peer": why_not or "llama-server", "servers": servers, "p50_speedup": ratios, **machine_info()}
