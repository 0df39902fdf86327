"""Which kernel runs prompt attention on CPU: our AVX-512 BF16 kernel or torch's SDPA, by measurement.

Prompt attention is ~15-30% of a CPU prefill. torch's flash attention runs bf16 through float GEMMs;
``inference/kernels/attention.cpp`` uses bf16 dot products (2.2-3.4x torch on a Zen 4 core pair), but an AMX
CPU's torch may do better, so on the first load of a head shape on a CPU both are timed on a 512-token prompt
and the faster is kept, cached like the weights' autotune (``inference/tuning.py``) under the CPU model,
core count, torch version, thread count and head shape. Without the kernel (no AVX-512 BF16, no compiler,
``CODELOOP_NATIVE_KERNELS=off``), a dtype other than bf16, a head dim it does not take, or off CPU: SDPA.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from inference.tuning import choose_measured, median_ms

log = logging.getLogger(__name__)
NATIVE, SDPA = "native", "sdpa"
TUNE_TOKENS = 512
REPEATS = 3


def supported(num_heads: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether our kernel takes this shape and dtype here (and is built)."""
    if device.type != "cpu" or dtype != torch.bfloat16 or head_dim % 32 or head_dim > 256:
        return False
    if num_kv_heads < 1 or num_heads % num_kv_heads:
        return False
    from inference import kernels

    return kernels.attention_available()


def choose(num_heads: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype, device: torch.device,
           asked: str = "auto") -> str:
    """``NATIVE`` or ``SDPA`` for this head shape: ``asked`` where it can run, else for "auto" a cached
    measurement (``CODELOOP_AUTOTUNE=force`` re-measures)."""
    if asked == SDPA:
        return SDPA
    if not supported(num_heads, num_kv_heads, head_dim, dtype, device):
        if asked == NATIVE:
            log.info("kernels: prompt attention stays SDPA (our kernel takes bf16 on a CPU with AVX-512 BF16 and "
                     "head dims that are multiples of 32 up to 256; here %s, head dim %d)", dtype, head_dim)
        return SDPA
    if asked == NATIVE:
        return NATIVE
    return choose_measured("prompt attention", f"{num_heads}x{num_kv_heads}x{head_dim}",
                           lambda: measure(num_heads, num_kv_heads, head_dim), TUNE_TOKENS)


@torch.inference_mode()
def measure(num_heads: int, num_kv_heads: int, head_dim: int, tokens: int = TUNE_TOKENS) -> dict[str, float]:
    """Median milliseconds of one causal prompt of ``tokens`` through each kernel."""
    q = torch.randn(tokens, num_heads, head_dim, dtype=torch.bfloat16)
    k = torch.randn(tokens, num_kv_heads, head_dim, dtype=torch.bfloat16)
    v = torch.randn(tokens, num_kv_heads, head_dim, dtype=torch.bfloat16)
    scale = head_dim**-0.5
    runs = {NATIVE: lambda: attend(q, k, v, scale), SDPA: lambda: sdpa_causal(q, k, v, scale)}
    return {name: round(median_ms(run, REPEATS), 3) for name, run in runs.items()}


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Our kernel: ``q [n, H, d]`` over ``k``/``v`` ``[L, KV, d]``, query ``i`` at position ``L - n + i``."""
    from inference import kernels

    return kernels.causal_attention(q, k, v, scale)


def sdpa_causal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """torch's SDPA for a fresh prompt (``L == n``), in the same layout as :func:`attend`."""
    o = F.scaled_dot_product_attention(q.transpose(0, 1).unsqueeze(0), k.transpose(0, 1).unsqueeze(0),
                                       v.transpose(0, 1).unsqueeze(0), is_causal=True, scale=scale,
                                       enable_gqa=True)
    return o.squeeze(0).transpose(0, 1)
