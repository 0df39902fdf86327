"""`codeloop bench engine`: our engine against HF transformers (and llama.cpp when installed), one run.

Scenarios: (a) single-stream latency, (b) 16 concurrent mixed-length requests, (c) an editor keystroke
trace with and without the prefix cache, (d) INT8 vs bf16 KV. Every ratio compares numbers measured in
the same process, side by side; timings are medians where a measurement repeats.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path
from typing import Any

from bench import data as bench_data
from bench.output import emit, machine_info
from inference.config import CacheConfig, EngineConfig
from inference.sampling import SamplingParams


def run_bench(args: argparse.Namespace) -> int:
    """Run the scenarios ``args`` names (``codeloop bench engine`` flags), print and write the JSON."""
    from inference.catalog import resolve_model

    model_dir = resolve_model(args.model)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]  # names of SCENARIOS
    ctx = BenchContext(model_dir, args.dtype, args.weight_quant, args.quick, not args.no_peers)
    result: dict[str, Any] = {"model": args.model, "dtype": args.dtype, "weight_quant": args.weight_quant,
                              "quick": args.quick, "machine": machine_info(),
                              "date": time.strftime("%Y-%m-%d")}
    for name in scenarios:
        result[name] = SCENARIOS[name](ctx)
        gc.collect()
    emit(result, args.out)
    return 0


class BenchContext:
    """Shared state: the model folder, prompt source, and a lazily loaded HF peer."""

    def __init__(self, model_dir: Path, dtype: str, weight_quant: str, quick: bool, peers: bool) -> None:
        self.model_dir, self.dtype, self.weight_quant = model_dir, dtype, weight_quant
        self.quick, self.peers = quick, peers
        self._hf = None
        self._tokenizer = None

    def engine(self, **cache: Any):
        from inference.engine import Engine

        config = EngineConfig(model=str(self.model_dir), dtype=self.dtype, weight_quant=self.weight_quant,
                              cache=CacheConfig(**{"kv_cache_bytes": 512 << 20, **cache}),
                              max_num_seqs=64, max_num_batched_tokens=1024)
        return Engine.from_config(config)

    @property
    def hf(self):
        if self._hf is None:
            from bench.hf_peer import HFPeer

            self._hf = HFPeer(self.model_dir, self.dtype)
        return self._hf

    def drop_hf(self) -> None:
        self._hf = None
        gc.collect()

    def tokens(self, engine, n: int, offset: int = 0) -> list[int]:
        ids = engine.tokenizer.encode(bench_data.source_text())
        return ids[offset:offset + n]


def _timed_generate(engine, prompts: list[list[int]], max_new: int) -> tuple[float, int]:
    params = SamplingParams(max_tokens=max_new, ignore_eos=True)
    start = time.perf_counter()
    outs = engine.generate(prompts, params)
    seconds = time.perf_counter() - start
    return seconds, sum(len(o.outputs[0].token_ids) for o in outs)


def _ttft(engine, prompt: list[int] | str, max_new: int, repeats: int) -> tuple[float, float]:
    """Median time to first token and median decode tokens/s after it (prefix cache off)."""
    firsts, rates = [], []
    for _ in range(repeats):
        first, total, _ = bench_data.timed_request(engine, prompt, SamplingParams(max_tokens=max_new, ignore_eos=True))
        firsts.append(first)
        rates.append((max_new - 1) / (total - first) if total > first else 0.0)
    return statistics.median(firsts), statistics.median(rates)


def scenario_single(ctx: BenchContext) -> dict[str, Any]:
    engine = ctx.engine(enable_prefix_caching=False)
    repeats = 1 if ctx.quick else 3
    max_new = 64
    p300, p1000 = ctx.tokens(engine, 300), ctx.tokens(engine, 1000)
    ttft300, decode = _ttft(engine, p300, max_new, repeats)
    ttft1000, _ = _ttft(engine, p1000, 2, repeats)
    weight_bytes = bench_data.weight_bytes_per_token(engine.runner.model)
    bandwidth = bench_data.memory_bandwidth_bytes_per_s()
    out: dict[str, Any] = {
        "engine": {"ttft_300_s": ttft300, "ttft_1000_s": ttft1000, "decode_tok_s": decode},
        "weight_bytes_per_token": weight_bytes, "memory_bandwidth_gb_s": bandwidth / 1e9,
        "bandwidth_bound_tok_s": bandwidth / weight_bytes,
    }
    out["decode_fraction_of_bound"] = decode / out["bandwidth_bound_tok_s"]
    del engine
    gc.collect()
    if ctx.peers:
        hf300 = ctx.hf.one(p300, max_new)
        hf1000 = ctx.hf.one(p1000, 1)
        hf_decode = (max_new - 1) / max(hf300.seconds - hf300.first_token_s, 1e-9)
        out["hf"] = {"ttft_300_s": hf300.first_token_s, "ttft_1000_s": hf1000.first_token_s,
                     "decode_tok_s": hf_decode}
        out["decode_ratio_vs_hf"] = decode / hf_decode
        ctx.drop_hf()
        llama = bench_data.llama_cpp_decode(ctx.model_dir, p300, max_new)
        if llama is not None:
            out["llama_cpp"] = llama
            out["decode_ratio_vs_llama_cpp"] = decode / llama["decode_tok_s"]
    return out


def scenario_concurrent(ctx: BenchContext) -> dict[str, Any]:
    engine = ctx.engine(enable_prefix_caching=False)
    num = 8 if ctx.quick else 16
    max_new = 32 if ctx.quick else 64
    lengths = [40 + (i * 97) % 560 for i in range(num)]
    prompts = [ctx.tokens(engine, n, offset=i * 53) for i, n in enumerate(lengths)]
    seconds, tokens = _timed_generate(engine, prompts, max_new)
    out: dict[str, Any] = {"num_requests": num, "prompt_lengths": lengths, "max_new_tokens": max_new,
                           "engine": {"seconds": seconds, "tokens": tokens, "tok_s": tokens / seconds,
                                      "max_batch_size": engine.stats().max_batch_size}}
    del engine
    gc.collect()
    if ctx.peers:
        one = ctx.hf.one_at_a_time(prompts, max_new)
        static = ctx.hf.static_batch(prompts, max_new)
        out["hf_one_at_a_time"] = {"seconds": one.seconds, "tok_s": one.tokens_per_s}
        out["hf_static_batch"] = {"seconds": static.seconds, "tok_s": static.tokens_per_s}
        out["ratio_vs_hf_one_at_a_time"] = out["engine"]["tok_s"] / one.tokens_per_s
        out["ratio_vs_hf_static_batch"] = out["engine"]["tok_s"] / static.tokens_per_s
        ctx.drop_hf()
    return out


def scenario_keystroke(ctx: BenchContext) -> dict[str, Any]:
    from bench.engine_trace import keystroke_trace

    return keystroke_trace(ctx, steps=10 if ctx.quick else 30)


def scenario_int8kv(ctx: BenchContext) -> dict[str, Any]:
    from bench.engine_trace import int8_kv_comparison

    return int8_kv_comparison(ctx, num_prompts=10 if ctx.quick else 50)


SCENARIOS = {
    "single": scenario_single,
    "concurrent": scenario_concurrent,
    "keystroke": scenario_keystroke,
    "int8kv": scenario_int8kv,
}
