"""INT8 KV cache quantization: symmetric, one scale per token per head (pure functions)."""

from __future__ import annotations

import torch

QMAX = 127
SCALE_DTYPE = torch.float16
"""How scales are stored beside the int8 blocks: 2 bytes per token per head, so a token's K+V cost
(head_dim + 2) / (2 * head_dim) of bf16 (0.516x at head_dim 64). fp16 keeps 11 significant bits of the
scale, far below the int8 rounding step; scales above 65504 (|x| > 8.3e6) would overflow and never occur."""


def quantize_kv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize K or V values ``[..., num_kv_heads, head_dim]`` to int8.

    Returns ``(q, scale)``: q int8 of x's shape, scale float32 ``[..., num_kv_heads]`` with
    ``scale = max|x| / 127`` over head_dim and ``q = round(x / scale)`` clamped to [-127, 127].
    An all-zero row gets scale 0 and q 0. Per element, ``|dequantize(q) - x| <= scale / 2``.
    """
    xf = x.float()
    amax = xf.abs().amax(dim=-1)  # [..., num_kv_heads]
    # NOTE: divide by a tensor, not the Python number: on CUDA torch computes ``t / scalar`` as
    # ``t * (1 / scalar)``, one ulp off IEEE division at times, and the Triton cache write (IEEE div_rn) must
    # match this bit for bit (seen on an H200, 2026-12-04: scales and int8 values differed from the kernel's).
    scale = amax / amax.new_full((), QMAX)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale)).unsqueeze(-1)
    q = torch.round(xf / safe).clamp_(-QMAX, QMAX).to(torch.int8)
    return q, scale


def dequantize_kv(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of ``quantize_kv``: ``q * scale`` in ``dtype``; rows with scale 0 come back as 0."""
    return (q.float() * scale.float().unsqueeze(-1)).to(dtype)
