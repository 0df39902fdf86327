"""Unmerged LoRA in the engine: per-token adapter deltas added to the outputs of the fused projections.

For every targeted module ``y = base(x)`` becomes ``y = round((base(x) in fp32) + scale * (x @ A.T) @ B.T)``
for the tokens of requests that use an adapter, which is how peft serves an adapter on a bf16 model (its LoRA
weights stay fp32, the sum is rounded once). The base weights are never touched, so base requests and
requests of several adapters run in the same step (as S-LoRA / punica do): each step the runner says which
token rows use which adapter (``LoraBatch``) and each module adds the delta of each adapter to its rows.

The deltas are forward hooks on whatever module computes the base projection (``nn.Linear``, int8/int4
layers, ...), so LoRA composes with any base linear and changes nothing in the model's module tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from inference.lora import AdapterError, LoraAdapter
from inference.models.config import ModelConfig

FUSED = {"q_proj": ("qkv_proj", 0), "k_proj": ("qkv_proj", 1), "v_proj": ("qkv_proj", 2),
         "gate_proj": ("gate_up_proj", 0), "up_proj": ("gate_up_proj", 1),
         "o_proj": ("o_proj", 0), "down_proj": ("down_proj", 0)}
"""HF projection -> (our fused module, which part of its output rows)."""


@dataclass(frozen=True)
class LoraPart:
    """One HF projection inside a fused module: output rows ``[row_start, row_stop)`` get
    ``scale * h[:, col_start:col_stop] @ b.T`` where ``h = x @ a.T`` of the fused module."""

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int
    b: torch.Tensor
    """[row_stop - row_start, rank] fp32."""
    scale: float


@dataclass(frozen=True)
class FusedLora:
    """All LoRA pairs of one fused module: one ``x @ a.T`` for every part, then one ``@ b.T`` per part."""

    a: torch.Tensor
    """[sum of ranks, in_features] fp32: the parts' A matrices stacked."""
    parts: tuple[LoraPart, ...]

    def add_delta(self, x: torch.Tensor, y32: torch.Tensor, rows: torch.Tensor | None) -> None:
        """``y32[rows] += delta(x[rows])`` in place (all rows when ``rows`` is None). Shapes: x [T, in], y32 [T, out]."""
        xs = x if rows is None else x.index_select(0, rows)
        h = xs.float() @ self.a.T  # [n, sum_r]
        for p in self.parts:
            delta = (h[:, p.col_start:p.col_stop] @ p.b.T) * p.scale  # [n, rows of the part]
            target = y32[:, p.row_start:p.row_stop]
            if rows is None:
                target.add_(delta)
            else:
                target.index_add_(0, rows, delta)


def row_ranges(cfg: ModelConfig) -> dict[str, list[tuple[int, int]]]:
    """Output-row ranges of each part of each fused module, in ``FUSED`` part order."""
    q, kv, inter = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim, cfg.intermediate_size
    return {"qkv_proj": [(0, q), (q, q + kv), (q + kv, q + 2 * kv)], "gate_up_proj": [(0, inter), (inter, 2 * inter)],
            "o_proj": [(0, cfg.hidden_size)], "down_proj": [(0, cfg.hidden_size)]}


def fuse(adapter: LoraAdapter, cfg: ModelConfig, device: torch.device | str = "cpu") -> dict[str, FusedLora]:
    """``{"layers.0.self_attn.qkv_proj": FusedLora, ...}`` for the model of ``cfg``; AdapterError if it does
    not fit (a layer the model lacks, or shapes that differ from the model's)."""
    ranges = row_ranges(cfg)
    grouped: dict[str, list[tuple[int, object]]] = {}
    for (layer, block, proj), pair in sorted(adapter.pairs.items()):
        if layer >= cfg.num_layers:
            raise AdapterError(f"adapter targets layer {layer}; the model has {cfg.num_layers}")
        fused, part = FUSED[proj]
        start, stop = ranges[fused][part]
        in_features = cfg.intermediate_size if proj == "down_proj" else (
            cfg.num_heads * cfg.head_dim if proj == "o_proj" else cfg.hidden_size)
        if pair.b.shape[0] != stop - start or pair.a.shape[1] != in_features:
            raise AdapterError(f"adapter layers.{layer}.{block}.{proj}: A {tuple(pair.a.shape)} / B "
                               f"{tuple(pair.b.shape)} do not fit the model's [{stop - start}, {in_features}]")
        grouped.setdefault(f"layers.{layer}.{block}.{fused}", []).append((part, pair))
    out = {}
    for name, items in grouped.items():
        fused = name.rsplit(".", 1)[1]
        parts, col = [], 0
        for part, pair in sorted(items, key=lambda item: item[0]):
            rank = pair.a.shape[0]
            start, stop = ranges[fused][part]
            parts.append(LoraPart(start, stop, col, col + rank, pair.b.to(device), pair.scale))
            col += rank
        a = torch.cat([pair.a for _, pair in sorted(items, key=lambda item: item[0])]).to(device)
        out[name] = FusedLora(a, tuple(parts))
    return out


@dataclass(frozen=True)
class LoraGroup:
    """The token rows of one step that use one adapter."""

    modules: dict[str, FusedLora]
    rows: torch.Tensor | None
    """Row indices into the step's flat token batch; None: every row."""


class LoraLayers:
    """Forward hooks on the fused projections of one model, applying this step's ``LoraGroup``s.

    Invariant: outside ``run`` no group is set, so the model computes exactly the base model.
    """

    def __init__(self, model: nn.Module) -> None:
        self.groups: Sequence[LoraGroup] = ()
        self._handles = []
        for name, module in model.named_modules():
            if name.rsplit(".", 1)[-1] in ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"):
                self._handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def add_deltas(_module: nn.Module, args: tuple, y: torch.Tensor) -> torch.Tensor | None:
            mine = [(g.modules[name], g.rows) for g in self.groups if name in g.modules]
            if not mine:
                return None
            x = args[0]
            y32 = y.float()  # [T, out]
            for lora, rows in mine:
                lora.add_delta(x, y32, rows)
            return y32.to(y.dtype)
        return add_deltas

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def step_groups(adapter_ids: Sequence[str | None], num_tokens: Sequence[int],
                loaded: dict[str, dict[str, FusedLora]], device: torch.device) -> list[LoraGroup]:
    """One group per adapter used in a step whose chunks have ``adapter_ids`` and ``num_tokens`` tokens each
    (laid out in that order); chunks without an adapter get none."""
    rows: dict[str, list[int]] = {}
    start = 0
    for adapter_id, n in zip(adapter_ids, num_tokens, strict=True):
        if adapter_id is not None:
            if adapter_id not in loaded:
                raise ValueError(f"adapter {adapter_id!r} is not loaded in the model runner")
            rows.setdefault(adapter_id, []).extend(range(start, start + n))
        start += n
    groups = []
    for adapter_id, ids in rows.items():
        every = len(ids) == start
        groups.append(LoraGroup(loaded[adapter_id], None if every else torch.tensor(ids, device=device)))
    return groups
