"""Weight-only int8 / int4 / fp16 linear layers for CPU (activations stay in the model dtype).

Decode on CPU is bound by the bytes of weights read per token, so int8 (1 B/weight) and int4 (0.5 B/weight
+ group scales) are faster than bf16 for a handful of rows. For many rows (prefill) torch's packed kernels
are slower than a bf16 GEMM, so above ``dense_rows`` rows we dequantize the weight and use ``F.linear``.
Quantization is pure functions (round-trip tested) plus drop-in modules; the mode comes from config.

fp16 is a storage format rather than a quantization: float32 activations times fp16 weights through
fbgemm's fp16 GEMM (weights widened inside the kernel, float32 accumulation). A bf16 checkpoint's weights are
exact in fp16 (bar values under fp16's normal range, ~6e-5), so it computes what float32 weights compute at
half their memory, and faster than float32 weights at every row count measured (one 896 x 4864 layer, 2
threads, Zen 4 EPYC: 1 row 0.14 vs 1.32 ms, 512 rows 23 vs 35 ms; bf16 weights there: 0.26 and 11 ms). x86
torch builds only (fbgemm); elsewhere ``fp16_gemm_available`` is False.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INT4_GROUP_SIZES = (32, 64, 128)
# Rows above which dequantize + bf16 GEMM beats the packed kernels (measured, 1 thread, avx512_bf16,
# 9728x896: int8 packed loses from ~16 rows, int4 packed from ~128 rows as its dequantize is slower).
INT8_DENSE_ROWS = 16
INT4_DENSE_ROWS = 128


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``w [N, K] -> (q int8 [N, K], scale fp32 [N])``."""
    w32 = w.float()
    scale = w32.abs().amax(dim=1) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w32 / safe.unsqueeze(1)).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (q.float() * scale.float().unsqueeze(1)).to(dtype)


def quantize_int4(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric int4 per group of ``group_size`` input channels.

    Returns ``(q int32 [N, K] in [0, 15], scales_and_zeros fp32 [K / group_size, N, 2])`` in the layout of
    ``aten._weight_int4pack_mm_for_cpu``: ``w ~= (q - 8) * scale + zero``.
    """
    n, k = w.shape
    if k % group_size:
        raise ValueError(f"in_features {k} is not a multiple of group_size {group_size}")
    groups = w.float().reshape(n, k // group_size, group_size)
    lo, hi = groups.amin(dim=-1), groups.amax(dim=-1)
    scale = ((hi - lo) / 15.0).clamp(min=1e-6)
    zero = lo + scale * 8.0
    q = torch.round((groups - lo.unsqueeze(-1)) / scale.unsqueeze(-1)).clamp_(0, 15).to(torch.int32)
    scales_and_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous()
    return q.reshape(n, k), scales_and_zeros


def dequantize_int4(q: torch.Tensor, scales_and_zeros: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    n, k = q.shape
    num_groups = scales_and_zeros.shape[0]
    sz = scales_and_zeros.float().transpose(0, 1)  # [N, groups, 2]
    groups = q.float().reshape(n, num_groups, k // num_groups)
    w = (groups - 8.0) * sz[..., :1] + sz[..., 1:]
    return w.reshape(n, k).to(dtype)


class Int8Linear(nn.Module):
    """``y = x @ dequant(q).T + bias`` with int8 weights and per-channel scales."""

    def __init__(self, linear: nn.Linear, dense_rows: int = INT8_DENSE_ROWS) -> None:
        super().__init__()
        q, scale = quantize_int8(linear.weight.detach())
        self.register_buffer("weight_int8", q)
        self.register_buffer("scales", scale.to(linear.weight.dtype))
        self.bias = linear.bias
        self.in_features, self.out_features, self.dense_rows = linear.in_features, linear.out_features, dense_rows

    def dense_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The dequantized weight ``[N, K]`` (what the packed kernel multiplies by)."""
        return self.weight_int8.to(dtype) * self.scales.to(dtype).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        if x2.shape[0] > self.dense_rows:
            y = F.linear(x2, self.dense_weight(x2.dtype))
        else:
            y = torch.ops.aten._weight_int8pack_mm(x2, self.weight_int8, self.scales.to(x2.dtype))
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


class Int4Linear(nn.Module):
    """Group-wise asymmetric int4 weights packed for ``aten._weight_int4pack_mm_for_cpu``.

    NOTE: keeps an unpacked int8 copy of the codes (1 B/weight of RAM, never read in decode) so prefill
    can dequantize with one fused multiply-add; the packed layout is private to torch.
    """

    def __init__(self, linear: nn.Linear, group_size: int, dense_rows: int = INT4_DENSE_ROWS) -> None:
        super().__init__()
        dtype = linear.weight.dtype
        n, k = linear.weight.shape
        q, sz = quantize_int4(linear.weight.detach(), group_size)
        self.register_buffer("weight_int4", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
        self.register_buffer("scales_and_zeros", sz.to(dtype))
        groups = sz.transpose(0, 1)  # [N, groups, 2]
        self.register_buffer("_codes", (q - 8).to(torch.int8).view(n, k // group_size, group_size))
        self.register_buffer("_scale", groups[..., :1].to(dtype).contiguous())
        self.register_buffer("_zero", groups[..., 1:].to(dtype).contiguous())
        self.bias = linear.bias
        self.group_size, self.dense_rows = group_size, dense_rows
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def dense_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The dequantized weight ``[N, K]``: ``(q - 8) * scale + zero`` per group."""
        w = torch.addcmul(self._zero.to(dtype), self._codes.to(dtype), self._scale.to(dtype))
        return w.view(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        if x2.shape[0] > self.dense_rows:
            y = F.linear(x2, self.dense_weight(x2.dtype))
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(
                x2, self.weight_int4, self.group_size, self.scales_and_zeros.to(x2.dtype)
            )
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


class Fp16Linear(nn.Module):
    """``y = x @ W.T + bias`` with ``W`` stored as fp16, packed for fbgemm; ``x`` and ``y`` in float32."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.packed = torch.ops.quantized.linear_prepack_fp16(linear.weight.detach().float(), None)
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features

    @classmethod
    def from_weight(cls, weight: torch.Tensor) -> Fp16Linear:
        """Without bias, from a weight ``[N, K]`` (the hybrid weights' packed fp16 copy)."""
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
        linear.weight = nn.Parameter(weight.detach(), requires_grad=False)
        return cls(linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        y = torch.ops.quantized.linear_dynamic_fp16(x2, self.packed)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    @property
    def nbytes(self) -> int:
        return 2 * self.in_features * self.out_features


_FP16_GEMM: bool | None = None


def fp16_gemm_available() -> bool:
    """Whether this torch build runs fbgemm's fp16-weight GEMM (x86 builds; probed once)."""
    global _FP16_GEMM
    if _FP16_GEMM is None:
        try:
            Fp16Linear(nn.Linear(16, 16, bias=False))(torch.ones(1, 16))
            _FP16_GEMM = True
        except (RuntimeError, AttributeError, NotImplementedError):
            _FP16_GEMM = False
    return _FP16_GEMM


def int4_group_size(linear: nn.Linear) -> int | None:
    """Smallest (most accurate) supported group size dividing ``in_features``, or None when the layer cannot be int4."""
    if linear.out_features % 16:
        return None
    return next((g for g in INT4_GROUP_SIZES if linear.in_features % g == 0), None)


def check_mode(mode: str) -> None:
    """ValueError unless ``mode`` is a weight quantization this torch can run."""
    if mode not in ("int8", "int4", "fp16"):
        raise ValueError(f"weight quantization must be int8, int4 or fp16, got {mode!r}")
    if mode == "fp16" and not fp16_gemm_available():
        raise ValueError("weight_quant fp16 needs fbgemm's fp16 GEMM (an x86 torch build)")


def quantize_module(model: nn.Module, name: str, mode: str) -> bool:
    """Replace the ``nn.Linear`` called ``name`` in ``model`` by its ``mode`` version, in place; False when
    ``name`` is not an ``nn.Linear`` or its shape does not fit int4 packing. Loading calls this as each
    weight arrives, so a float32 copy of the whole model is never resident at once."""
    module = model.get_submodule(name)
    if not isinstance(module, nn.Linear):
        return False
    if mode == "fp16":
        if module.weight.dtype != torch.float32:
            raise ValueError(f"weight_quant fp16 computes in float32; the model is {module.weight.dtype}")
        new: nn.Module = Fp16Linear(module)
    elif mode == "int8":
        new = Int8Linear(module)
    else:
        group = int4_group_size(module)
        if group is None:
            return False
        new = Int4Linear(module, group)
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
    return True


def quantize_model(model: nn.Module, mode: str) -> list[str]:
    """Replace every ``nn.Linear`` in ``model`` by its ``mode`` ("int8" | "int4" | "fp16") version, in place.

    Embeddings stay dense (a tied ``lm_head`` gets its own quantized copy). Returns the names of layers
    left dense because their shape does not fit int4 packing. "fp16" needs a float32 model and
    ``fp16_gemm_available()``.
    """
    check_mode(mode)
    return [name for name, module in list(model.named_modules())
            if isinstance(module, nn.Linear) and not quantize_module(model, name, mode)]
