"""Engine benchmark scenarios that replay editor traffic: keystroke trace and INT8 vs bf16 KV."""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

from bench import data as bench_data
from inference.fim import fim_prompt
from inference.sampling import SamplingParams
from lsp.percentile import percentile

TRACE_PREFIX_TOKENS = 1500
SUFFIX = "\n\n\nif __name__ == '__main__':\n    main()\n"
KEYS_PER_STEP = (3, 1, 4, 2, 5)
"""Characters typed between two requests, cycled: a few characters at a time."""


def _trace_prompts(tokenizer, steps: int) -> list[str]:
    text = bench_data.source_text()
    head = tokenizer.decode(tokenizer.encode(text)[:TRACE_PREFIX_TOKENS])
    start = len(head) if text.startswith(head) else len(text) // 3
    prompts, pos = [], start
    for i in range(steps):
        pos += KEYS_PER_STEP[i % len(KEYS_PER_STEP)]
        prompts.append(fim_prompt(text[:pos], SUFFIX))
    return prompts


def _replay(engine, prompts: list[str], max_new: int) -> dict[str, Any]:
    firsts, totals, texts = [], [], []
    for prompt in prompts:
        first, total, final = bench_data.timed_request(engine, prompt, SamplingParams(max_tokens=max_new))
        firsts.append(first)
        totals.append(total)
        texts.append(final.outputs[0].text)
    stats = engine.stats()
    return {"ttft_median_s": statistics.median(firsts), "ttft_p95_s": percentile(firsts, 0.95),
            "latency_median_s": statistics.median(totals), "prefix_hit_rate": stats.prefix_hit_rate,
            "texts": texts}


def keystroke_trace(ctx, steps: int, max_new: int = 24) -> dict[str, Any]:
    """Type forward through a real ~1,500-token file, one FIM request per few keystrokes."""
    results = {}
    for label, caching in (("with_prefix_cache", True), ("without_prefix_cache", False)):
        engine = ctx.engine(enable_prefix_caching=caching)
        prompts = _trace_prompts(engine.tokenizer, steps)
        results[label] = _replay(engine, prompts, max_new)
        results["prompt_tokens"] = len(engine.tokenizer.encode(prompts[-1]))
        del engine
        gc.collect()
    with_cache, without = results["with_prefix_cache"], results["without_prefix_cache"]
    same = sum(a == b for a, b in zip(with_cache.pop("texts"), without.pop("texts"), strict=True))
    results.update({
        "steps": steps, "max_new_tokens": max_new,
        "ttft_speedup": without["ttft_median_s"] / with_cache["ttft_median_s"],
        "identical_outputs": f"{same}/{steps}",
    })
    return results


def int8_kv_comparison(ctx, num_prompts: int, max_new: int = 64,
                       budget_bytes: int = 256 << 20, seq_len: int = 2048) -> dict[str, Any]:
    """Bytes per token, sequences that fit one budget, and greedy agreement on HumanEval prompts."""
    prompts = bench_data.humaneval_prompts(num_prompts)
    params = SamplingParams(max_tokens=max_new)
    runs: dict[str, Any] = {}
    for dtype in ("auto", "int8"):
        engine = ctx.engine(kv_cache_dtype=dtype, kv_cache_bytes=budget_bytes, enable_prefix_caching=False)
        per_block = engine.runner.bytes_per_block()
        start = time.perf_counter()
        outs = engine.generate(prompts, params)
        runs[dtype] = {
            "bytes_per_token": per_block / engine.block_size,
            "num_blocks_in_budget": engine.num_blocks,
            "max_concurrent_seqs": engine.num_blocks // -(-seq_len // engine.block_size),
            "generate_s": time.perf_counter() - start,
            "ids": [o.outputs[0].token_ids for o in outs],
        }
        del engine
        gc.collect()
    base, quant = runs["auto"].pop("ids"), runs["int8"].pop("ids")
    exact = sum(a == b for a, b in zip(base, quant, strict=True))
    prefix = [_common_prefix(a, b) / max(len(a), 1) for a, b in zip(base, quant, strict=True)]
    return {
        "budget_bytes": budget_bytes, "seq_len": seq_len, "bf16": runs["auto"], "int8": runs["int8"],
        "bytes_ratio": runs["int8"]["bytes_per_token"] / runs["auto"]["bytes_per_token"],
        "concurrency_ratio": runs["int8"]["max_concurrent_seqs"] / max(runs["auto"]["max_concurrent_seqs"], 1),
        "greedy_identical": f"{exact}/{len(prompts)}",
        "mean_common_prefix_fraction": statistics.mean(prefix),
    }


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
