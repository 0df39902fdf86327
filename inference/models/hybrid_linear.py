"""Hybrid weights: dense weights for prompt rows, packed int8/int4/fp16 copies for generated rows, both resident.

Prompt rows may take a packed copy of their own too (``PROMPT_KINDS``): int8 weights times int8 activations
through our integer GEMM (``int8x8``), which prefills faster than bf16 on CPUs without AMX; the autotune decides.

On CPU, prefill is a GEMM that dense bf16 (AVX-512-BF16 / AMX) does best, while decode reads every weight
for a handful of rows and is bound by bytes per weight, where torch's packed weight-only kernels win.
Which rows of a step are generated rows (decode tokens, speculative drafts) is set once per step on the
shared :class:`RowSplit` by the model runner, from the scheduler's batch; every :class:`HybridLinear`
reads it. fp16 is fbgemm's fp16-weight GEMM in float32 (rows widened in, results narrowed back): on a Zen 4
it decodes one row ~2x faster than bf16 dense (``quant_linear.Fp16Linear``). The packed kernels compute each
row independently of the others (bitwise), so a generated token
gets the same logits alone, in a batch or as a draft under verification. Above ``packed_max_rows``
generated rows (a large decode batch) dense wins again and every row goes dense.

LoRA deltas (``inference/lora_layers.py``) are forward hooks on these modules: they add to the output of
whichever path ran, so adapters compose with both.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from inference import kernels
from inference.models.quant_linear import Fp16Linear, int4_group_size, quantize_int4, quantize_int8

log = logging.getLogger(__name__)
PACKED_KINDS = ("int8", "int4", "fp16", "int4x8", "int8x8")
"""int4x8: int4 weights times int8 activations through our AVX-512 VNNI / AVX2 kernel (``inference.kernels``);
int8x8: int8 weights times int8 activations through our integer GEMM (the prompt kind below, also for decode)."""
PROMPT_KINDS = ("int8x8",)
"""Packed copies for prompt rows (and for decode batches above ``packed_max_rows``): int8x8, int8 weights per
output channel times int8 activations per block of 32 through our integer kernel (``inference.kernels``)."""
BODY_MODULES = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


class RowSplit:
    """Which rows of the current step's flat token batch take the packed path.

    ``packed`` None: decide by row count (at most ``packed_max_rows`` rows: packed); otherwise the rows in
    ``packed`` are generated rows (a prefix ``slice`` or an index tensor) and the rest prompt rows.
    """

    def __init__(self, packed_max_rows: int) -> None:
        self.packed_max_rows = packed_max_rows
        self.packed: slice | torch.Tensor | None = None
        self.dense: torch.Tensor | None = None
        self.num_packed = 0

    def set_rows(self, generated: list[bool]) -> None:
        """This step's rows: ``generated[i]`` True when row i is a generated row."""
        self.num_packed = n = sum(generated)
        if n > self.packed_max_rows:
            n = self.num_packed = 0
        if n == 0:
            self.packed, self.dense = slice(0, 0), None
        elif n == len(generated):  # by row count, as the lm_head does: no per-step state for a compiled step
            self.packed, self.dense = None, None
        elif all(generated[:n]):
            self.packed, self.dense = slice(0, n), None
        else:
            self.packed = torch.tensor([i for i, g in enumerate(generated) if g])
            self.dense = torch.tensor([i for i, g in enumerate(generated) if not g])

    def clear(self) -> None:
        self.packed, self.dense, self.num_packed = None, None, 0


class PackedWeight:
    """A weight ``[N, K]`` packed for torch's CPU weight-only kernels (int8 per channel, int4 per group,
    fp16 for fbgemm)."""

    def __init__(self, weight: torch.Tensor, kind: str, group_size: int | None = None) -> None:
        self.kind = kind
        dtype = weight.dtype
        if kind == "int8":
            self.q, scale = quantize_int8(weight)
            self.scales = scale.to(dtype)
        elif kind == "int4":
            if group_size is None:
                raise ValueError("int4 packing needs a group size")
            q, sz = quantize_int4(weight, group_size)
            self.q = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
            self.scales = sz.to(dtype)
            self.group_size = group_size
        elif kind == "int4x8":
            if group_size is None:
                raise ValueError("int4x8 packing needs a group size")
            if not kernels.available():
                raise RuntimeError("int4x8 kernel unavailable on this machine (see the log)")
            self.q = kernels.pack_int4x8(*quantize_int4(weight, group_size), group_size)  # scales inside
            self.group_size = group_size
        elif kind == "int8x8":
            if not kernels.available():
                raise RuntimeError("int8x8 kernel unavailable on this machine (see the log)")
            q, scale = quantize_int8(weight)
            self.q, self.scales = kernels.pack_int8x8(q), scale.float().contiguous()
        elif kind == "fp16":
            self.fp16 = Fp16Linear.from_weight(weight)
        else:
            raise ValueError(f"packed kind must be one of {PACKED_KINDS + PROMPT_KINDS}, got {kind!r}")

    @property
    def nbytes(self) -> int:
        if self.kind == "fp16":
            return self.fp16.nbytes
        if self.kind == "int4x8":
            return self.q.numel()
        return self.q.numel() * self.q.element_size() + self.scales.numel() * self.scales.element_size()

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """``x [M, K] @ W.T`` in ``x``'s dtype."""
        if self.kind == "fp16":
            return self.fp16(x.float()).to(x.dtype)
        if self.kind == "int4x8":
            return kernels.int4x8_mm(x, self.q, self.group_size)
        if self.kind == "int8x8":
            return kernels.int8x8_mm(x, self.q, self.scales)
        scales = self.scales if self.scales.dtype == x.dtype else self.scales.to(x.dtype)
        if self.kind == "int8":
            return torch.ops.aten._weight_int8pack_mm(x, self.q, scales)
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.q, self.group_size, scales)


class HybridLinear(nn.Module):
    """``nn.Linear`` with a resident packed copy for generated rows (see the module docstring), and optionally
    one for prompt rows (``prompt``; None: the dense weight). With a prompt copy the dense weight is dropped:
    every row then takes one of the two copies (``weight`` is None).

    ``split`` None (the lm_head, which sees only sampled rows): packed when the rows fit
    ``packed_max_rows``, dense otherwise. ``packed`` None: every row takes the prompt path.
    """

    def __init__(self, linear: nn.Linear, packed: PackedWeight | None, split: RowSplit | None,
                 packed_max_rows: int, prompt: PackedWeight | None = None) -> None:
        super().__init__()
        self.weight = linear.weight if prompt is None else None
        self.bias = linear.bias
        self.packed = packed
        self.prompt = prompt
        self.split = split
        self.packed_max_rows = packed_max_rows
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def _dense(self, x: torch.Tensor) -> torch.Tensor:
        return self.prompt.matmul(x) if self.prompt is not None else F.linear(x, self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x if x.dim() == 2 else x.reshape(-1, self.in_features)
        split = self.split
        if self.packed is None:
            y = self._dense(x2)
        elif split is None or split.packed is None:
            y = self.packed.matmul(x2) if x2.shape[0] <= self.packed_max_rows else self._dense(x2)
        elif split.dense is None:  # generated rows first (or none, or all)
            n = split.num_packed
            if n == x2.shape[0]:
                y = self.packed.matmul(x2)
            elif n == 0:
                y = self._dense(x2)
            else:
                y = torch.cat([self.packed.matmul(x2[:n]), self._dense(x2[n:])])
        else:
            y = x2.new_empty(x2.shape[0], self.out_features)
            y[split.packed] = self.packed.matmul(x2[split.packed])
            y[split.dense] = self._dense(x2[split.dense])
        if self.bias is not None:
            y = y + self.bias
        return y if x2 is x else y.reshape(*x.shape[:-1], self.out_features)


def packable(linear: nn.Linear, kind: str) -> int | None:
    """The int4 group size (0 for int8, int8x8 and fp16) ``linear`` packs with, or None when its shape does not
    fit."""
    if kind in ("int8", "fp16"):
        return 0
    if kind == "int8x8":
        return 0 if kernels.packs_int8(linear.out_features, linear.in_features) else None
    group = int4_group_size(linear)  # int4x8 quantizes as int4 does, then packs for our kernel
    if kind == "int4x8" and group is not None and not kernels.packs(linear.out_features, linear.in_features, group):
        return None
    return group


def make_hybrid(model: nn.Module, kind: str, packed_max_rows: int, prompt_kind: str = "dense") -> RowSplit:
    """Give every body projection and the lm_head of ``model`` a packed ``kind`` copy for generated rows
    ("dense": none) and a ``prompt_kind`` copy for prompt rows ("dense": the dense weight; the lm_head sees
    only sampled rows: its copy serves more than ``packed_max_rows`` of them), in place. A layer with a prompt
    copy drops its dense weight: the lm_head's float32 one on an AVX2 CPU (1.5B: 890 MiB, a third of the editor
    engine's resident memory), and a tied lm_head no longer reads the embedding table (see the runner).

    Returns the model's :class:`RowSplit`, which the runner sets each step. A layer whose shape does not pack
    keeps that path dense (logged).
    """
    split = RowSplit(packed_max_rows)
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Linear):
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf not in BODY_MODULES and leaf != "lm_head":
            continue
        copies: dict[str, PackedWeight | None] = {}
        for role, k in (("packed", kind), ("prompt", prompt_kind)):
            group = None if k == "dense" else packable(module, k)
            if k != "dense" and group is None:
                log.info("hybrid weights: %s %s does not pack as %s; it stays dense", name,
                         tuple(module.weight.shape), k)
            same = copies.get("packed") if role == "prompt" and k == kind else None  # one copy serves both
            copies[role] = same or (None if group is None else PackedWeight(module.weight.detach(), k, group or None))
        if copies["packed"] is None and copies["prompt"] is None:
            continue
        new = HybridLinear(module, copies["packed"], split if leaf != "lm_head" else None, packed_max_rows,
                           copies["prompt"])
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
    return split


def weight_memory(model: nn.Module) -> dict[str, int]:
    """Resident bytes of the model's weights: dense parameters and packed copies."""
    seen: set[int] = set()
    dense = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            dense += p.numel() * p.element_size()
    packed = sum(c.nbytes for m in model.modules() if isinstance(m, HybridLinear)
                 for c in {m.packed, m.prompt} - {None})  # a copy serving both roles counts once
    return {"dense_bytes": dense, "packed_bytes": packed, "total_bytes": dense + packed}
