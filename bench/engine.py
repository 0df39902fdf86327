"""`codeloop bench engine`: our engine against HF transformers and llama.cpp (llama-bench), one run.

Scenarios: (a) single-stream latency (warm-up, then the median, min and max of 5 repeats; the kernels that
ran), (b) 16 concurrent mixed-length requests, (c) an editor keystroke trace with and without the prefix
cache, (d) INT8 vs bf16 KV. Every ratio compares numbers measured in the same run, side by side.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path
from typing import Any

from bench import data as bench_data
from bench.output import emit, machine_info, spread
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
    ctx = BenchContext(model_dir, args.dtype, args.weight_quant, args.quick, not args.no_peers, args.threads,
                       getattr(args, "prefill_quant", "auto"), getattr(args, "prompt_attention", "auto"),
                       getattr(args, "decode_attention", "auto"))
    result: dict[str, Any] = {"model": args.model, "dtype": args.dtype, "weight_quant": args.weight_quant,
                              "prefill_quant": ctx.prefill_quant, "prompt_attention": ctx.prompt_attention,
                              "decode_attention": ctx.decode_attention,
                              "quick": args.quick, "machine": machine_info(),
                              "date": time.strftime("%Y-%m-%d")}
    for name in scenarios:
        result[name] = SCENARIOS[name](ctx)
        gc.collect()
    emit(result, args.out)
    return 0


class BenchContext:
    """Shared state: the model folder, prompt source, and a lazily loaded HF peer."""

    def __init__(self, model_dir: Path, dtype: str, weight_quant: str, quick: bool, peers: bool,
                 threads: int | None = None, prefill_quant: str = "auto", prompt_attention: str = "auto",
                 decode_attention: str = "auto") -> None:
        self.model_dir, self.dtype, self.weight_quant = model_dir, dtype, weight_quant
        self.prefill_quant, self.prompt_attention = prefill_quant, prompt_attention
        self.decode_attention = decode_attention
        self.quick, self.peers, self.threads = quick, peers, threads
        self._hf = None
        self._tokenizer = None

    def engine(self, **cache: Any):
        from inference.engine import Engine

        config = EngineConfig(model=str(self.model_dir), dtype=self.dtype, weight_quant=self.weight_quant,
                              prefill_quant=self.prefill_quant, prompt_attention=self.prompt_attention,
                              decode_attention=self.decode_attention, cache=CacheConfig(**{"kv_cache_bytes": 512 << 20, **cache}),
                              max_num_seqs=64, max_num_batched_tokens=1024, num_threads=self.threads)
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


def _single_runs(engine, p300: list[int], p1000: list[int], max_new: int, repeats: int) -> dict[str, Any]:
    """Warm-up, then ``repeats`` runs: TTFT of a 300-token prompt and decode tok/s after it, and the prefill
    tok/s of a 1,000-token prompt (prefix cache off); median, min and max of each."""
    params = SamplingParams(max_tokens=max_new, ignore_eos=True)
    bench_data.timed_request(engine, p300, params)
    ttft300, decode, prefill1000 = [], [], []
    for _ in range(repeats):
        first, total, _ = bench_data.timed_request(engine, p300, params)
        ttft300.append(first)
        decode.append((max_new - 1) / (total - first))
        first, _, _ = bench_data.timed_request(engine, p1000, SamplingParams(max_tokens=1, ignore_eos=True))
        prefill1000.append(len(p1000) / first)
    return {"ttft_300_s": spread(ttft300), "decode_tok_s": spread(decode), "prefill_1000_tok_s": spread(prefill1000)}


def scenario_single(ctx: BenchContext) -> dict[str, Any]:
    """Batch-1 latency of our engine, HF transformers and llama.cpp (llama-bench), in this one run."""
    import torch

    from bench import llama_cpp

    engine = ctx.engine(enable_prefix_caching=False)
    repeats = 2 if ctx.quick else 5
    max_new = 64
    p300, p1000 = ctx.tokens(engine, 300), ctx.tokens(engine, 1000)
    ours = _single_runs(engine, p300, p1000, max_new, repeats)
    kernels = engine.runner.kernel_report()
    eager = None
    if engine.runner.compiled is not None:  # the same engine with its decode steps eager, right after
        compiled, engine.runner.compiled = engine.runner.compiled, None
        eager = _single_runs(engine, p300, p1000, max_new, repeats)
        engine.runner.compiled = compiled
    weight_bytes = bench_data.weight_bytes_per_token(engine.runner.model)
    bandwidth = bench_data.memory_bandwidth_bytes_per_s()
    decode = ours["decode_tok_s"]["median"]
    out: dict[str, Any] = {
        "repeats": repeats, "engine": ours, "kernels": kernels, "weight_bytes_per_token": weight_bytes,
        "memory_bandwidth_gb_s": bandwidth / 1e9, "bandwidth_bound_tok_s": bandwidth / weight_bytes,
    }
    if eager is not None:
        out["engine_eager_decode"] = eager
        out["decode_ratio_compiled_vs_eager"] = ours["decode_tok_s"]["median"] / eager["decode_tok_s"]["median"]
    out["decode_fraction_of_bound"] = decode / out["bandwidth_bound_tok_s"]
    out.update(_prefill_roofline(ctx, engine, len(p1000), ours["prefill_1000_tok_s"]["median"]))
    del engine
    gc.collect()
    if not ctx.peers:
        return out
    hf_runs = [ctx.hf.one(p300, max_new) for _ in range(repeats)]
    hf_prefill = [ctx.hf.one(p1000, 1) for _ in range(repeats)]
    out["hf"] = {"ttft_300_s": spread([r.first_token_s for r in hf_runs]),
                 "decode_tok_s": spread([(max_new - 1) / max(r.seconds - r.first_token_s, 1e-9) for r in hf_runs]),
                 "prefill_1000_tok_s": spread([len(p1000) / r.first_token_s for r in hf_prefill])}
    out["decode_ratio_vs_hf"] = decode / out["hf"]["decode_tok_s"]["median"]
    ctx.drop_hf()
    reason = llama_cpp.missing(ctx.model_dir)
    if reason:
        out["llama_cpp"] = {"skipped": reason}
        return out
    llama = llama_cpp.llama_bench(llama_cpp.find_gguf(ctx.model_dir), torch.get_num_threads(),
                                  (len(p300), len(p1000)), max_new, repeats)
    out["llama_cpp"] = llama
    if "decode_tok_s" in llama:
        out["decode_ratio_vs_llama_cpp"] = decode / llama["decode_tok_s"]["median"]
        out["prefill_1000_ratio_vs_llama_cpp"] = (ours["prefill_1000_tok_s"]["median"]
                                                  / llama["prefill_1000_tok_s"]["median"])
    return out


def _prefill_roofline(ctx: BenchContext, engine, context: int, prefill_tok_s: float) -> dict[str, Any]:
    """Prefill against this CPU's GEMM: FLOPs per token of the model, the FLOP/s our prefill reached, and
    the FLOP/s of one matmul of the model's MLP shape in the compute dtype (its practical ceiling)."""
    model = engine.runner.model
    per_token = bench_data.prefill_flops_per_token(model.config, context)
    dtype = engine.runner.dtype  # the compute dtype (a float32 model may keep a 16-bit embedding table)
    gemm = bench_data.gemm_flops_per_s(dtype, 512, model.config.hidden_size, model.config.intermediate_size)
    return {"prefill_flops_per_token": per_token, "prefill_1000_gflop_s": prefill_tok_s * per_token / 1e9,
            "gemm_dtype": str(dtype).removeprefix("torch."), "gemm_gflop_s": gemm / 1e9,
            "prefill_fraction_of_gemm": prefill_tok_s * per_token / gemm}


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
