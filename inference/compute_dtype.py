"""The dtype a model computes in: ``auto`` picks bf16 only where the hardware computes it.

bf16 GEMMs are fast on CUDA and on CPUs with AVX-512-BF16 or AMX; elsewhere (AVX2-only x86, e.g. Zen 2/3
EPYC) torch runs them through a slow path: a 64 x 896 by 896 x 4864 bf16 matmul took 418 ms against 11 ms in
fp32 on one such core. There ``auto`` is float32: twice the weight memory, tens of times the speed.
"""

from __future__ import annotations

import torch

from inference.config import DTYPES


def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` computes bf16 GEMMs in hardware."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def resolve_dtype(name: str, device: str = "cpu") -> str:
    """A concrete dtype name for ``name`` (one of DTYPES) on ``device``."""
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {name!r}")
    if name != "auto":
        return name
    return "bfloat16" if native_bf16(device) else "float32"


def torch_dtype(name: str, device: str = "cpu") -> torch.dtype:
    return getattr(torch, resolve_dtype(name, device))
