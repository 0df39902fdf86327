"""Inputs and reference figures for the engine benchmark: real source text, machine facts, bandwidth."""

from __future__ import annotations

import gzip
import json
import statistics
import time
from functools import cache
from pathlib import Path
from typing import Any

SOURCE_MODULE = "argparse"
"""A real, long, permissively licensed Python file that every Python install has."""


@cache
def source_text() -> str:
    import importlib.util

    spec = importlib.util.find_spec(SOURCE_MODULE)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).read_text()


def humaneval_prompts(limit: int) -> list[str]:
    """HumanEval prompts from the packaged copy (evals/data) or ../shared/benchmarks."""
    root = Path(__file__).resolve().parent.parent
    for path in (root / "evals" / "data" / "humaneval" / "HumanEval.jsonl.gz",
                 root.parent / "shared" / "benchmarks" / "humaneval" / "HumanEval.jsonl.gz"):
        if path.is_file():
            with gzip.open(path, "rt") as fh:
                return [json.loads(line)["prompt"] for line in fh if line.strip()][:limit]
    raise FileNotFoundError("HumanEval data not found (evals/data/humaneval or ../shared/benchmarks)")


def timed_request(engine, prompt: list[int] | str, params) -> tuple[float, float, Any]:
    """Run one request alone on ``engine``: (seconds to its first token, seconds in all, final output)."""
    start = time.perf_counter()
    rid = engine.add_request(prompt, params)
    first, final = None, None
    while final is None:
        for out in engine.step():
            if out.request_id != rid:
                continue
            if first is None and out.outputs[0].token_ids:
                first = time.perf_counter() - start
            if out.finished:
                final = out
    total = time.perf_counter() - start
    return (first if first is not None else total), total, final


def weight_bytes_per_token(model) -> int:
    """Bytes of weights read per decoded token: every parameter and buffer but the embedding table
    (one row per token is negligible) and private ``_``-named buffers (prefill-only copies such as
    Int4Linear's unpacked codes, which decode never reads); with hybrid weights, the packed copies that
    decode reads instead of the dense weights (a tied lm_head's included)."""
    from inference.models.hybrid_linear import HybridLinear

    hybrid = [m for m in model.modules() if isinstance(m, HybridLinear)]
    total = sum(m.packed.nbytes for m in hybrid)
    seen = {id(m.weight) for m in hybrid}
    for name, tensor in list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers()):
        if id(tensor) in seen:  # (a tied lm_head is named twice: counted as the lm_head)
            continue
        if "embed" in name and "lm_head" not in name or name.rsplit(".", 1)[-1].startswith("_"):
            continue
        seen.add(id(tensor))
        if "rope" in name or "inv_freq" in name or "cos" in name or "sin" in name:
            continue
        total += tensor.numel() * tensor.element_size()
    return total


def memory_bandwidth_bytes_per_s(num_bytes: int = 256 << 20, repeats: int = 7) -> float:
    """Median copy bandwidth (bytes read + written per second) of a buffer much larger than the caches."""
    import torch

    src = torch.ones(num_bytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        rates.append(2 * num_bytes / (time.perf_counter() - start))
    return statistics.median(rates)


def prefill_flops_per_token(cfg, context: int) -> float:
    """FLOPs per prompt token of a ``context``-token prefill of a model with ``cfg``
    (``inference.models.config.ModelConfig``): every linear layer of every block (the LM head runs for the
    last token only) and causal attention's scores and weighted sum over ``context / 2`` keys on average.
    Norms, RoPE and activations are left out (< 1%)."""
    hidden, q = cfg.hidden_size, cfg.num_heads * cfg.head_dim
    linear = 2 * hidden * q + 2 * hidden * cfg.num_kv_heads * cfg.head_dim + 3 * hidden * cfg.intermediate_size
    attention = 2 * q * context / 2
    return 2.0 * cfg.num_layers * (linear + attention)


def gemm_flops_per_s(dtype, m: int, k: int, n: int, repeats: int = 7) -> float:
    """Median FLOP/s of one ``m x k`` by ``k x n`` matmul in ``dtype`` with torch's threads: what this CPU's
    GEMM library reaches on a prefill-shaped product (the practical ceiling of a prefill)."""
    import torch

    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    torch.matmul(a, b)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        rates.append(2.0 * m * k * n / (time.perf_counter() - start))
    return statistics.median(rates)
