"""The dtype a model computes in: ``auto`` picks bf16 only where the hardware computes it.

bf16 GEMMs are fast on CUDA and on CPUs with AVX-512-BF16 or AMX; elsewhere (AVX2-only x86, e.g. Zen 2/3
EPYC) torch runs them through a slow path: a 64 x 896 by 896 x 4864 bf16 matmul took 418 ms against 11 ms in
fp32 on one such core. There ``auto`` computes in float32 and, where torch has fbgemm's fp16 GEMM (x86),
stores the linear layers' weights in fp16 (``weight_quant`` "none" runs as "fp16"): bf16's weight memory,
float32's numbers (a bf16 checkpoint is exact in fp16), faster than float32 weights at every row count
measured on a Zen 4 (``inference/models/quant_linear.py``), and keeps K/V in bf16 (``resolve_kv_dtype``):
the weight and KV memory of a bf16 machine.
"""

from __future__ import annotations

import os

import torch

from inference.config import DTYPES


def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` computes bf16 GEMMs in hardware. On CPU, ``CODELOOP_CPU_BF16=0`` / ``=1`` overrides
    the detection (a VM that reports AVX-512-BF16 but runs it slowly; or measuring the other path's memory)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    forced = os.environ.get("CODELOOP_CPU_BF16", "")
    if forced in ("0", "1"):
        return forced == "1"
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


def _auto_float32_cpu(dtype: str, device: str) -> bool:
    """dtype "auto" that computes in float32 on a CPU (one without hardware bf16)."""
    return dtype == "auto" and device.startswith("cpu") and resolve_dtype(dtype, device) == "float32"


def resolve_weight_quant(weight_quant: str, dtype: str, device: str = "cpu") -> str:
    """The ``weight_quant`` that runs: "none" under dtype "auto" that computes in float32 on a CPU becomes
    "fp16" where this torch has fbgemm's fp16 GEMM; anything asked for explicitly runs as asked."""
    if weight_quant != "none" or not _auto_float32_cpu(dtype, device):
        return weight_quant
    from inference.models.quant_linear import fp16_gemm_available

    return "fp16" if fp16_gemm_available() else weight_quant


def resolve_kv_dtype(kv_cache_dtype: str, dtype: str, device: str = "cpu") -> str:
    """How K/V are stored: "int8" as asked; "auto" in the model dtype, except that dtype "auto" computing
    in float32 on a CPU stores them in bf16 (half the pool; the numbers bf16 machines run with), widened
    as read."""
    if kv_cache_dtype == "int8":
        return "int8"
    return "bfloat16" if _auto_float32_cpu(dtype, device) else resolve_dtype(dtype, device)
