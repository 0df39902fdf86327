"""`codeloop bench fim`: fresh fill-in-the-middle completions at the language server's prompt sizes.

Cursors come from real code (``--source``, default the standard library's ``email`` package): half finish
the rest of a line inside a function (single-line suggestions), half write a function body removed from
the document (multi-line suggestions). Each cursor is completed exactly as the editor asks: the LSP's own
context building (snippets from the other files, its budgets), engine client and post-processing
(``Completer.complete``), with the prefix cache off so every completion is fresh. One run measures, side by
side, every engine configuration asked (``--speculative none,ngram,draft,none+eager``: the same model and
weights; ``+eager``: decode steps not compiled; ``+dense`` / ``+int8x8``: that prefill path; ``+attn-native`` /
``+attn-sdpa``: that prompt attention) and
the peer, llama.cpp's ``llama-server /infill`` given the same prefix, suffix and snippets and asked for as
many tokens as our engine generated. Speculation must not change any suggestion: identical suggestions are
counted (and raw texts that agree as far as the shorter goes: the stream stops once the suggestion is settled).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.output import emit, machine_info
from lsp.percentile import percentile

DEFAULT_SOURCE = "email"
"""A standard-library package: real code every Python install has, several files for snippets."""


@dataclass(frozen=True)
class FimCursor:
    """A document with a hole and the cursor in it (``line``/``character``: 0-based LSP position)."""

    path: str
    text: str
    line: int
    character: int
    kind: str
    """"line" (finish the line) or "body" (write the function body)."""


def source_root(name: str) -> Path:
    """A folder as given, or the folder of an importable package."""
    path = Path(name)
    if path.is_dir():
        return path
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"--source {name!r} is neither a folder nor an importable package")
    return Path(next(iter(spec.submodule_search_locations)))


def pick_cursors(root: Path, count: int) -> list[FimCursor]:
    """``count`` cursors, alternating "body" and "line", from functions of the ``.py`` files under ``root``
    (sorted, deterministic)."""
    bodies: list[FimCursor] = []
    lines: list[FimCursor] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(errors="replace")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        source = text.splitlines(keepends=True)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
                bodies.extend(_body_cursor(path, source, node))
                lines.extend(_line_cursor(path, source, node))
    picked: list[FimCursor] = []
    step_b, step_l = max(len(bodies) // max(count // 2, 1), 1), max(len(lines) // max(count - count // 2, 1), 1)
    bodies, lines = bodies[::step_b], lines[::step_l]
    while len(picked) < count and (bodies or lines):
        for pool in (bodies, lines):
            if pool and len(picked) < count:
                picked.append(pool.pop(0))
    return picked


def _body_cursor(path: Path, source: list[str], node: ast.AST) -> list[FimCursor]:
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        return []  # docstring first: the body is mostly prose
    start, end = first.lineno - 1, node.end_lineno  # 0-based first body line, exclusive end
    while start > node.lineno and (not source[start - 1].strip() or source[start - 1].lstrip().startswith("#")):
        start -= 1  # comments above the first statement belong to the body
    if not 3 <= end - start <= 15:
        return []
    indent = source[start][: len(source[start]) - len(source[start].lstrip())]
    text = "".join(source[:start]) + indent + "\n" + "".join(source[end:])
    return [FimCursor(str(path), text, start, len(indent), "body")]


def _line_cursor(path: Path, source: list[str], node: ast.AST) -> list[FimCursor]:
    for stmt in node.body:
        if isinstance(stmt, (ast.Assign, ast.Return)) and stmt.lineno == stmt.end_lineno:
            row = source[stmt.lineno - 1].rstrip("\n")
            cut = row.find("=") + 1 if isinstance(stmt, ast.Assign) else row.find("return") + len("return")
            if cut <= 0 or len(row) - cut < 8:
                continue
            cut += row[cut:].startswith(" ")
            lines = source[: stmt.lineno - 1] + [row[:cut] + "\n"] + source[stmt.lineno:]
            return [FimCursor(str(path), "".join(lines), stmt.lineno - 1, cut, "line")]
    return []


def summary(seconds: list[float]) -> dict[str, float | int | None]:
    return {"p50": percentile(seconds, 0.5), "p95": percentile(seconds, 0.95), "min": min(seconds, default=None),
            "max": max(seconds, default=None), "n": len(seconds)}


async def _complete_all(model: str, options: dict[str, Any], root: Path, cursors: list[FimCursor],
                        kernels: dict[str, Any]) -> list[dict[str, Any]]:
    from lsp.completer import Completer
    from lsp.config import Settings
    from lsp.inprocess_client import InProcessClient
    from lsp.sources import Sources
    from lsp.suggestion import Document

    sources = Sources()
    sources.scan_workspace(str(root))
    client = InProcessClient(model, engine_options=options)
    completer = Completer(client, Settings(), str(root))
    records = []
    try:
        for i, cur in enumerate([cursors[0], *cursors]):  # the first one twice: warm-up
            doc = Document(Path(cur.path).as_uri(), cur.path, cur.text)
            start = time.perf_counter()
            done = await completer.complete(doc, cur.line, cur.character, sources.index)
            seconds = time.perf_counter() - start
            if i == 0:
                continue
            ctx = done.context
            records.append({"kind": cur.kind, "mode": ctx.mode.value, "seconds": seconds, "raw": done.raw,
                            "text": done.text, "tokens": client.count_tokens(done.raw) or 0,
                            "prompt_tokens": client.count_tokens(ctx.prompt), "prefix": ctx.prefix,
                            "suffix": ctx.suffix, "snippets": [{"filename": s.path, "text": s.text}
                                                               for s in ctx.snippets]})
        engine = (await client.engine()).engine
        kernels.update(engine.runner.kernel_report())
        stats = engine.stats()
        kernels["draft_tokens"], kernels["accepted_tokens"] = stats.num_draft_tokens, stats.num_accepted_tokens
    finally:
        await client.aclose()
    return records


def run_config(model: str, weight_quant: str, speculative: str, draft_model: str | None, root: Path,
               cursors: list[FimCursor], threads: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every cursor through one in-process engine configuration (prefix cache off; ``speculative`` a method,
    with "+eager" for decode steps that are not compiled, "+dense" / "+int8x8" for that prefill path and
    "+attn-native" / "+attn-sdpa" for that prompt attention); the engine is closed after."""
    from inference.config import CacheConfig, SpeculativeConfig

    speculative, *flags = speculative.split("+")
    prefill = next((f for f in flags if f != "eager" and not f.startswith("attn-")), "auto")
    attention = next((f.removeprefix("attn-") for f in flags if f.startswith("attn-")), "auto")
    options = {"weight_quant": weight_quant, "num_threads": threads, "prompt_attention": attention,
               "compile_decode": "off" if "eager" in flags else "auto", "prefill_quant": prefill,
               "cache": CacheConfig(enable_prefix_caching=False, kv_cache_tokens=8192),
               "speculative": SpeculativeConfig(method=speculative, draft_model=draft_model,
                                                draft_weight_quant=weight_quant)}
    info: dict[str, Any] = {}
    records = asyncio.run(_complete_all(model, options, root, cursors, info))
    gc.collect()
    return records, info


def run_peer(model_dir: Path, threads: int, records: list[dict[str, Any]]) -> list[dict[str, Any]] | str:
    """``llama-server /infill`` for each of our records' contexts, as many tokens as we generated."""
    from bench import llama_cpp

    reason = llama_cpp.missing(model_dir)
    if reason:
        return reason
    out = []
    with llama_cpp.LlamaServer(llama_cpp.find_gguf(model_dir), threads) as server:
        first = records[0]
        server.infill(first["prefix"], first["suffix"], max(first["tokens"], 1), first["snippets"])  # warm-up
        for rec in records:
            reply = server.infill(rec["prefix"], rec["suffix"], max(rec["tokens"], 1), rec["snippets"])
            out.append({"mode": rec["mode"], "seconds": reply.seconds, "tokens": reply.timings.get("predicted_n"),
                        "prompt_tokens": reply.timings.get("prompt_n")})
    return out


def by_mode(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {mode: summary([r["seconds"] for r in records if r["mode"] == mode])
            for mode in ("single_line", "multi_line")}


def run_bench(args: argparse.Namespace) -> int:
    """``codeloop bench fim``: every configuration and the peer over the same cursors; JSON out."""
    import torch

    from inference.catalog import resolve_model

    model_dir = resolve_model(args.model)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = source_root(args.source)
    cursors = pick_cursors(root, args.cursors)
    result: dict[str, Any] = {"model": args.model, "weight_quant": args.weight_quant, "source": str(root),
                              "cursors": len(cursors), "machine": machine_info(), "date": time.strftime("%Y-%m-%d"),
                              "configs": {}}
    baseline: list[dict[str, Any]] | None = None
    for method in args.speculative.split(","):
        records, info = run_config(str(model_dir), args.weight_quant, method, args.draft_model, root, cursors,
                                   args.threads)
        entry: dict[str, Any] = {"latency_s": by_mode(records), "kernels": info,
                                 "generated_tokens": sum(r["tokens"] for r in records),
                                 "prompt_tokens_p50": percentile([r["prompt_tokens"] or 0 for r in records], 0.5)}
        if baseline is None:
            baseline = records
        else:
            pairs = list(zip(baseline, records, strict=True))
            entry["identical_outputs"] = sum(a["text"] == b["text"] for a, b in pairs)  # the suggestion shown
            # the stream stops once the suggestion is settled, so a step that appends several tokens (drafts)
            # may leave a longer raw text: the same tokens as far as the shorter one goes
            entry["consistent_raw"] = sum(a["raw"].startswith(b["raw"]) or b["raw"].startswith(a["raw"])
                                          for a, b in pairs)
            entry["speedup_vs_" + args.speculative.split(",")[0]] = _speedups(baseline, records)
        result["configs"][method] = entry
    assert baseline is not None
    if not args.no_peer:
        peer = run_peer(model_dir, torch.get_num_threads(), baseline)
        if isinstance(peer, str):
            result["llama_server"] = {"skipped": peer}
        else:
            result["llama_server"] = {"latency_s": by_mode(peer),
                                      "prompt_tokens_p50": percentile([p["prompt_tokens"] or 0 for p in peer], 0.5)}
            result["llama_server"]["ours_vs_peer_p50"] = {
                method: {mode: _ratio(result["llama_server"]["latency_s"][mode]["p50"],
                                      entry["latency_s"][mode]["p50"]) for mode in ("single_line", "multi_line")}
                for method, entry in result["configs"].items()}
    emit(result, args.out)
    return 0


def _ratio(slow: float | None, fast: float | None) -> float | None:
    return slow / fast if slow and fast else None


def _speedups(base: list[dict[str, Any]], other: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per mode: ratio of p50 latencies, and the median of per-cursor ratios (paired)."""
    out: dict[str, float | None] = {}
    for mode in ("single_line", "multi_line"):
        pairs = [(a["seconds"], b["seconds"]) for a, b in zip(base, other, strict=True) if a["mode"] == mode]
        out[f"{mode}_p50_ratio"] = _ratio(percentile([a for a, _ in pairs], 0.5), percentile([b for _, b in pairs], 0.5))
        out[f"{mode}_paired_median"] = percentile([a / b for a, b in pairs if b > 0], 0.5)
    return out
