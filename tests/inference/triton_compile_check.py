"""Compile every kernel variant for an H100 (sm_90) down to a cubin, without a GPU.

Run as ``python -m tests.inference.triton_compile_check`` with ``TRITON_INTERPRET`` unset (under the
interpreter even Triton's own ``tl.cdiv`` is interpreted and cannot be compiled). The launches of the
real wrappers are recorded and handed to ``triton.compile`` with an explicit CUDA target; Triton's wheel
carries the LLVM backend and ``ptxas`` needed. Prints one JSON line per variant: name, ok, error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import ModuleType

import torch
import triton
from triton.backends.compiler import GPUTarget

from inference.attention import triton_cache, triton_decode, triton_prefill
from inference.attention.metadata import LayerKVCache

_PTR = {torch.float32: "*fp32", torch.bfloat16: "*bf16", torch.float16: "*fp16", torch.int8: "*i8",
        torch.int32: "*i32", torch.int64: "*i64"}


class _Recorder:
    """Stands in for a kernel: ``kernel[grid](*args, **constexprs)`` records the call instead of launching."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple, dict]] = []

    def __getitem__(self, grid: object) -> Callable[..., None]:
        return lambda *args, **kwargs: self.calls.append((args, kwargs))


def _type_of(arg: object) -> str:
    if isinstance(arg, torch.Tensor):
        return _PTR[arg.dtype]
    if isinstance(arg, bool):
        return "i1"
    return "i32" if isinstance(arg, int) else "fp32"


def _compile(kernel: triton.runtime.JITFunction, args: tuple, constexprs: dict) -> None:
    params = [p.name for p in kernel.params if p.name not in constexprs]
    signature = {name: _type_of(arg) for name, arg in zip(params, args, strict=True)}
    signature.update(dict.fromkeys(constexprs, "constexpr"))
    src = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=dict(constexprs))
    if not triton.compile(src, target=GPUTarget("cuda", 90, 32)).asm["cubin"]:
        raise RuntimeError("no cubin")


def _recorded(module: ModuleType, names: list[str], launch: Callable[[], None]) -> list[tuple]:
    """Run ``launch`` with ``module``'s kernels ``names`` recorded; (kernel, args, constexprs) per call."""
    kernels = {n: getattr(module, n) for n in names}
    recorders = {n: _Recorder() for n in names}
    for n, r in recorders.items():
        setattr(module, n, r)
    try:
        launch()
    finally:
        for n, k in kernels.items():
            setattr(module, n, k)
    return [(kernels[n], a, c) for n in names for a, c in recorders[n].calls]


def _cache(dtype: torch.dtype, quant: bool, head_dim: int = 128) -> LayerKVCache:
    shape = (8, 16, 2, head_dim)
    if quant:
        return LayerKVCache(torch.zeros(shape, dtype=torch.int8), torch.zeros(shape, dtype=torch.int8),
                            torch.zeros(shape[:3]), torch.zeros(shape[:3]))
    return LayerKVCache(torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype))


def _decode(dtype: torch.dtype, quant: bool) -> Callable[[], None]:
    def launch() -> None:
        q = torch.zeros(4, 12, 128, dtype=dtype)
        lens, tables = torch.ones(4, dtype=torch.int32), torch.zeros(4, 8, dtype=torch.int32)
        idx = torch.arange(4, dtype=torch.int32)
        triton_decode.paged_decode(q, _cache(dtype, quant), tables, lens, 0.1, torch.empty_like(q), num_splits=4)
        triton_decode.paged_decode(q, _cache(dtype, quant), tables, lens, 0.1, torch.empty_like(q),
                                   token_idx=idx, seq_idx=idx)
    return launch


def _prefill(dtype: torch.dtype, quant: bool) -> Callable[[], None]:
    def launch() -> None:
        q, k = torch.zeros(10, 4, 64, dtype=dtype), torch.zeros(10, 2, 64, dtype=dtype)
        triton_prefill.paged_prefill(
            q, k, k, _cache(dtype, quant, head_dim=64), torch.zeros(2, 8, dtype=torch.int32),
            torch.tensor([0, 4, 10], dtype=torch.int32), torch.tensor([4, 20], dtype=torch.int32),
            torch.arange(2, dtype=torch.int32), 6, 0.1, torch.empty_like(q),
        )
    return launch


def _write(dtype: torch.dtype, quant: bool) -> Callable[[], None]:
    def launch() -> None:
        k = torch.zeros(5, 2, 128, dtype=dtype)
        triton_cache.write_kv(_cache(dtype, quant), k, k, torch.zeros(5, dtype=torch.int64))
    return launch


VARIANTS = [
    (triton_decode, ["_decode_kernel", "_reduce_kernel"], _decode, [(torch.bfloat16, False), (torch.float16, True),
                                                                    (torch.float32, False), (torch.bfloat16, True)]),
    (triton_prefill, ["_prefill_kernel"], _prefill, [(torch.bfloat16, False), (torch.bfloat16, True),
                                                     (torch.float32, False)]),
    (triton_cache, ["_write_kv_kernel"], _write, [(torch.bfloat16, False), (torch.bfloat16, True)]),
]


def main() -> int:
    failures = 0
    for module, names, make, cases in VARIANTS:
        for dtype, quant in cases:
            for kernel, args, constexprs in _recorded(module, names, make(dtype, quant)):
                name = f"{kernel.fn.__name__}[{dtype}, quant={quant}, {constexprs}]"
                try:
                    _compile(kernel, args, constexprs)
                    print(json.dumps({"name": name, "ok": True}), flush=True)
                except Exception as exc:  # noqa: BLE001 - report every variant
                    failures += 1
                    print(json.dumps({"name": name, "ok": False, "error": str(exc)[-2000:]}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
