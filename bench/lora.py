"""`codeloop bench lora`: what unmerged LoRA costs, side by side with the base model in one engine.

One engine, one random rank-r adapter on all seven projections (peft format, trained-size deltas). Each
repeat runs the same work three ways, interleaved so machine noise hits all alike: every request on the
base model, every request on the adapter, and half and half (two adapters' worth of groups in one step).
Reported: prefill tokens/s (one long prompt, one new token) and decode tokens/s (1 and 16 sequences), as
medians over repeats, and each adapter figure's ratio to the base figure of the same repeat set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import data as bench_data
from bench.output import emit, machine_info
from inference.config import CacheConfig, EngineConfig
from inference.sampling import SamplingParams

MODES = ("base", "adapter", "mixed")


def write_random_adapter(folder: Path, cfg: Any, rank: int, seed: int = 0, b_std: float = 1e-3) -> Path:
    """A peft-format LoRA with random A and B on every projection of a model with ``ModelConfig`` ``cfg``."""
    import torch
    from safetensors.torch import save_file

    from inference.lora import PROJECTIONS

    q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    shapes = {"q_proj": (q, cfg.hidden_size), "k_proj": (kv, cfg.hidden_size), "v_proj": (kv, cfg.hidden_size),
              "o_proj": (cfg.hidden_size, q), "gate_proj": (cfg.intermediate_size, cfg.hidden_size),
              "up_proj": (cfg.intermediate_size, cfg.hidden_size), "down_proj": (cfg.hidden_size, cfg.intermediate_size)}
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(cfg.num_layers):
        for proj in PROJECTIONS:
            block = "self_attn" if proj in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            out_f, in_f = shapes[proj]
            prefix = f"base_model.model.model.layers.{layer}.{block}.{proj}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, in_f, generator=gen) / in_f**0.5
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(out_f, rank, generator=gen) * b_std
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": list(PROJECTIONS)}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def _run(engine: Any, prompts: list[list[int]], params: SamplingParams, adapters: list[str | None]) -> float:
    """Seconds to run every prompt to the end, all in flight at once."""
    start = time.perf_counter()
    for prompt, adapter in zip(prompts, adapters, strict=True):
        engine.add_request(prompt, params, adapter_id=adapter)
    while engine.has_unfinished():
        engine.step()
    return time.perf_counter() - start


def _adapters(mode: str, n: int) -> list[str | None]:
    if mode == "base":
        return [None] * n
    if mode == "adapter":
        return ["a"] * n
    return [("a", "b", None)[i % 3] if n > 1 else "a" for i in range(n)]


def measure(engine: Any, prompt_tokens: int, decode_tokens: int, repeats: int) -> dict[str, Any]:
    """{scenario: {mode: median tokens/s, "ratio_<mode>": adapter/base}} over ``repeats`` interleaved rounds.

    ``engine`` must have adapters "a" and "b" loaded and the prefix cache off (prompts repeat)."""
    vocab = engine.runner.model_config.vocab_size
    text_ids = engine.tokenizer.encode(bench_data.source_text())
    long_prompt = [t % vocab for t in text_ids[:prompt_tokens]]
    scenarios = {  # name: (prompts, params, tokens counted)
        "prefill": ([long_prompt], SamplingParams(max_tokens=1), prompt_tokens),
        "decode_1": ([text_ids[:32]], SamplingParams(max_tokens=decode_tokens, ignore_eos=True), decode_tokens),
        "decode_16": ([text_ids[i * 16:i * 16 + 32] for i in range(16)],
                      SamplingParams(max_tokens=decode_tokens, ignore_eos=True), 16 * decode_tokens),
    }
    rates: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODES} for s in scenarios}
    for _ in range(repeats + 1):  # the first round warms up and is dropped
        for name, (prompts, params, num_tokens) in scenarios.items():
            for mode in MODES:
                seconds = _run(engine, prompts, params, _adapters(mode, len(prompts)))
                rates[name][mode].append(num_tokens / seconds)
    out: dict[str, Any] = {}
    for name, by_mode in rates.items():
        med = {m: round(statistics.median(v[1:]), 2) for m, v in by_mode.items()}
        out[name] = {**med, **{f"ratio_{m}": round(med[m] / med["base"], 3) for m in MODES if m != "base"}}
    return out


def run_bench(args: argparse.Namespace) -> int:
    """Measure with ``codeloop bench lora``'s flags; print and write the JSON."""
    import torch

    from inference.catalog import resolve_model
    from inference.engine import Engine

    if args.threads:
        torch.set_num_threads(args.threads)
    config = EngineConfig(model=str(resolve_model(args.model)), dtype=args.dtype, max_num_seqs=16,
                          max_num_batched_tokens=max(512, args.prompt_tokens),
                          cache=CacheConfig(kv_cache_bytes=256 << 20, enable_prefix_caching=False))
    engine = Engine.from_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        for seed, name in enumerate(("a", "b")):
            engine.load_adapter(write_random_adapter(Path(tmp) / name, engine.runner.model_config, args.rank, seed), name)
    result = {"model": args.model, "dtype": args.dtype, "rank": args.rank, "repeats": args.repeats,
              "prompt_tokens": args.prompt_tokens, "decode_tokens": args.decode_tokens,
              "modes": {"base": "no adapter", "adapter": "every request on adapter a",
                        "mixed": "requests on a, b and the base model in the same steps (prefill: a only)"},
              "machine": machine_info(), "date": time.strftime("%Y-%m-%d"),
              **measure(engine, args.prompt_tokens, args.decode_tokens, args.repeats)}
    emit(result, args.out)
    return 0
