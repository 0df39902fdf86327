"""GPU benchmark parts that drive the engine; run by :mod:`bench.gpu`, each in its own process. Each returns a
JSON-able dict.

The decode and batching parts drive the real engine over random weights in real shapes
(:mod:`bench.dummy_models`); the peer is HF transformers on the same device in the same process. The
attention kernels alone are timed in :mod:`bench.gpu_attention`. With ``device="cpu"`` and the ``tiny`` shape
the engine parts run on a CPU (SDPA backend): the tests and a CPU rehearsal exercise them that way.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from bench.dummy_models import (
    BLOCK_SIZE,
    dummy_engine,
    dummy_model,
    free_memory,
    hf_dummy_model,
    model_config,
    sync,
    timed_generate,
)
from inference.models.config import ModelConfig
from inference.sampling import SamplingParams


def memory_bandwidth(device: str) -> dict[str, Any]:
    """Nominal HBM bandwidth of the card and a measured device-to-device copy bandwidth (on a CPU: the
    measured RAM copy bandwidth, nominal unknown)."""
    if not device.startswith("cuda"):
        from bench.data import memory_bandwidth_bytes_per_s

        return {"device": "cpu", "nominal_bytes_per_s": float("nan"),
                "measured_copy_bytes_per_s": memory_bandwidth_bytes_per_s(64 << 20, 3)}
    name = torch.cuda.get_device_name()
    nominal = 4.8e12 if "H200" in name else 3.35e12 if "H100" in name else float("nan")
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    y.copy_(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    torch.cuda.synchronize()
    measured = 2 * x.numel() * 10 / (time.perf_counter() - t)
    return {"device": name, "nominal_bytes_per_s": nominal, "measured_copy_bytes_per_s": measured}


def _weight_bytes_per_token(model: torch.nn.Module, cfg: ModelConfig) -> int:
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    if not cfg.tie_word_embeddings:  # an untied embedding table is read one row per token
        total -= cfg.vocab_size * cfg.hidden_size * 2
    return total


def _engine_decode_rate(engine, prompt: list[int], new: int) -> float:
    """Batch-1 greedy decode tok/s: (new - 1) tokens in the time ``new`` tokens take over one token."""
    one = timed_generate(engine, [prompt], [1])["wall_s"]
    many = timed_generate(engine, [prompt], [new])["wall_s"]
    return (new - 1) / (many - one)


def _prefill_rate(engine, cfg: ModelConfig, n: int) -> float:
    """Prompt tok/s of one ``n``-token prompt through the engine (one token out; prefix cache off)."""
    prompt = torch.randint(0, cfg.vocab_size, (n,)).tolist()
    timed_generate(engine, [prompt], [1])  # compiles this length's kernels
    return n / min(timed_generate(engine, [prompt], [1])["wall_s"] for _ in range(3))


def _ours_decode_rates(cfg: ModelConfig, prompt: list[int], new: int, device: str,
                       prefill_len: int) -> dict[str, float]:
    """Batch-1 greedy decode tok/s of the engine with CUDA graphs and eager (on a CPU both are eager), and its
    prefill tok/s at ``prefill_len`` tokens."""
    model = dummy_model(cfg, device)
    out: dict[str, float] = {"weight_bytes": _weight_bytes_per_token(model, cfg)}
    for graphs in (True, False):
        engine = dummy_engine(model, cfg, device, max_num_seqs=1, max_model_len=cfg.max_position_embeddings,
                              cuda_graphs=graphs)
        _engine_decode_rate(engine, prompt, min(new, 8))  # compiles every kernel variant
        out["ours_cuda_graph_tok_s" if graphs else "ours_eager_tok_s"] = _engine_decode_rate(engine, prompt, new)
        if graphs:
            out["ours_prefill_tok_s"] = _prefill_rate(engine, cfg, prefill_len)
        del engine
        free_memory()
    return out


def _hf_rates(cfg: ModelConfig, prompt: list[int], new: int, device: str, prefill_len: int) -> dict[str, float]:
    """HF ``generate`` batch-1 decode tok/s and one forward's prefill tok/s (last position's logits only)."""
    hf = hf_dummy_model(cfg, device)
    ids = torch.tensor([prompt], device=device)

    def seconds(n: int) -> float:
        sync(device)
        t = time.perf_counter()
        hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False)
        sync(device)
        return time.perf_counter() - t

    seconds(4)
    rate = (new - 1) / (seconds(new) - seconds(1))
    long = torch.randint(0, cfg.vocab_size, (1, prefill_len), device=device)

    def forward() -> float:
        sync(device)
        t = time.perf_counter()
        with torch.no_grad():
            hf(long, logits_to_keep=1)
        sync(device)
        return time.perf_counter() - t

    forward()
    prefill = prefill_len / min(forward() for _ in range(3))
    return {"hf_generate_tok_s": rate, "hf_prefill_tok_s": prefill}


def part_decode_bs1(shape: str, quick: bool = False, device: str = "cuda") -> dict[str, Any]:
    """Batch-1 greedy decode tok/s (the engine with CUDA graphs, the engine eager, HF generate) vs the
    memory-bandwidth bound, and prefill tok/s of a long prompt (the engine vs one HF forward)."""
    cfg = model_config(shape, 4096)
    prompt_len, new, prefill_len = (512, 64 if quick else 128, 2048) if shape != "tiny" else (32, 8, 64)
    prompt = torch.randint(0, cfg.vocab_size, (prompt_len,)).tolist()
    ours = _ours_decode_rates(cfg, prompt, new, device, prefill_len)
    hf = _hf_rates(cfg, prompt, new, device, prefill_len)
    free_memory()
    kv_bytes = 2 * cfg.num_layers * (prompt_len + new // 2) * cfg.num_kv_heads * cfg.head_dim * 2
    bw = memory_bandwidth(device)
    token_bytes = ours.pop("weight_bytes") + kv_bytes
    bound = bw["nominal_bytes_per_s"] / token_bytes
    graph = ours["ours_cuda_graph_tok_s"]
    return {"shape": shape, "device": device, "prompt_len": prompt_len, "new_tokens": new, **ours, **hf,
            "speedup_vs_hf": graph / hf["hf_generate_tok_s"], "prefill_len": prefill_len,
            "prefill_speedup_vs_hf": ours["ours_prefill_tok_s"] / hf["hf_prefill_tok_s"],
            "bytes_per_token": token_bytes, "hbm_bound_tok_s": bound, "fraction_of_hbm_bound": graph / bound,
            "fraction_of_measured_copy_bound": graph * token_bytes / bw["measured_copy_bytes_per_s"], **bw}


def _hf_static_wall(cfg: ModelConfig, prompts: list[list[int]], max_new: int, device: str) -> float:
    """Seconds for HF ``generate`` to run every prompt (left-padded, one batch) ``max_new`` tokens."""
    hf = hf_dummy_model(cfg, device)
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for i, p in enumerate(prompts):  # left padding
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    hf.generate(ids[:8, -64:], attention_mask=mask[:8, -64:], max_new_tokens=4, do_sample=False)
    sync(device)
    t = time.perf_counter()
    hf.generate(ids, attention_mask=mask, max_new_tokens=max_new, min_new_tokens=max_new, do_sample=False)
    sync(device)
    wall = time.perf_counter() - t
    del hf
    free_memory()
    return wall


def _batch_workload(shape: str, quick: bool) -> tuple[list[list[int]], list[int]]:
    """64 mixed-length random prompts and their output lengths (seeded: the same in every part)."""
    g = torch.Generator().manual_seed(0)
    n, tiny = 64, shape == "tiny"
    max_prompt, max_out = (64, 16) if tiny else (512, 128) if quick else (1024, 256)
    prompt_lens = torch.randint(8 if tiny else 32, max_prompt, (n,), generator=g).tolist()
    out_lens = torch.randint(4 if tiny else 16, max_out, (n,), generator=g).tolist()
    vocab = model_config(shape).vocab_size
    return [torch.randint(0, vocab, (p,), generator=g).tolist() for p in prompt_lens], out_lens


def part_batch64(shape: str, quick: bool = False, device: str = "cuda") -> dict[str, Any]:
    """64 concurrent mixed-length greedy requests: the engine's continuous batching vs HF static batching."""
    prompts, out_lens = _batch_workload(shape, quick)
    cfg = model_config(shape, 2048)
    model = dummy_model(cfg, device)
    engine = dummy_engine(model, cfg, device, max_num_seqs=len(prompts), max_model_len=2048)
    timed_generate(engine, prompts, out_lens)  # warm-up: every batch size's kernels and graphs, untimed
    ours = timed_generate(engine, prompts, out_lens)
    del engine, model
    free_memory()
    hf_wall = _hf_static_wall(cfg, prompts, max(out_lens), device)
    useful = sum(out_lens)
    return {"shape": shape, "device": device, "num_requests": len(prompts), "prompt_tokens": sum(map(len, prompts)),
            "useful_new_tokens": useful, "ours": ours, "hf_static_wall_s": hf_wall,
            "hf_static_useful_tok_s": useful / hf_wall, "speedup_vs_hf": ours["tok_per_s"] / (useful / hf_wall)}


def part_int8_kv_engine(shape: str, quick: bool = False, device: str = "cuda") -> dict[str, Any]:
    """The 64-request workload through the engine with bf16 KV and with INT8 KV under one KV budget: bytes per
    block, blocks (and 2,048-token sequences) the budget holds, tok/s, and greedy agreement of the outputs."""
    prompts, out_lens = _batch_workload(shape, quick)
    cfg = model_config(shape, 2048)
    model = dummy_model(cfg, device, final_norm=50.0)
    budget = (256 << 20) if shape != "tiny" else (1 << 20)
    out: dict[str, Any] = {"shape": shape, "device": device, "kv_cache_bytes": budget}
    tokens = {}
    for kv in ("auto", "int8"):
        engine = dummy_engine(model, cfg, device, max_num_seqs=len(prompts), max_model_len=2048,
                              kv_cache_dtype=kv, kv_cache_bytes=budget)
        timed_generate(engine, prompts, out_lens)  # warm-up: every batch size's kernels and graphs, untimed
        run = timed_generate(engine, prompts, out_lens)
        stats = engine.stats()
        tokens[kv] = [o.outputs[0].token_ids for o in engine.generate(
            prompts[:16], [SamplingParams(max_tokens=n, ignore_eos=True) for n in out_lens[:16]])]
        out["bf16" if kv == "auto" else "int8"] = {
            "bytes_per_block": engine.runner.bytes_per_block(), "num_blocks": stats.num_blocks_total,
            "full_2048_sequences": stats.num_blocks_total * BLOCK_SIZE // 2048, "max_batch_size": stats.max_batch_size,
            **run}
        del engine
        free_memory()
    out["int8_bytes_ratio"] = out["int8"]["bytes_per_block"] / out["bf16"]["bytes_per_block"]
    out["int8_tok_s_ratio"] = out["int8"]["tok_per_s"] / out["bf16"]["tok_per_s"]
    pairs = list(zip(tokens["auto"], tokens["int8"], strict=True))
    out["greedy_identical_outputs"] = sum(a == b for a, b in pairs) / len(pairs)
    same_prefix = sum(next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a)) for a, b in pairs)
    out["greedy_tokens_before_first_difference"] = same_prefix / sum(map(len, tokens["auto"]))
    out["note"] = "random weights with logits scaled up (final norm 50): greedy agreement is indicative only"
    return out
