"""LoRA adapters (peft format) applied to our fused Llama-family model by merging.

``W = W_base + scale * B @ A`` for every targeted projection. Base weights of the touched layers are kept,
so switching adapters or going back to the base model is exact (no accumulated rounding). One adapter is
active at a time; the engine keys its prefix cache with the adapter's name and version so KV computed under
one set of weights is never reused under another.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
_KEY = re.compile(r"layers\.(\d+)\.(self_attn|mlp)\.(\w+_proj)\.lora_([AB])(?:\.default)?\.weight$")
FUSED = {"q_proj": ("qkv_proj", 0), "k_proj": ("qkv_proj", 1), "v_proj": ("qkv_proj", 2),
         "gate_proj": ("gate_up_proj", 0), "up_proj": ("gate_up_proj", 1),
         "o_proj": ("o_proj", 0), "down_proj": ("down_proj", 0)}


class AdapterError(ValueError):
    """The adapter folder is unreadable or does not fit this model."""


@dataclass(frozen=True)
class LoraAdapter:
    """Low-rank deltas keyed by (layer index, block, HF projection name)."""

    deltas: dict[tuple[int, str, str], torch.Tensor]
    """[out_features, in_features] float32 deltas, already scaled."""
    rank: int
    alpha: float


def read_adapter(folder: Path) -> LoraAdapter:
    """Read a peft LoRA adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{folder}: cannot read {ADAPTER_CONFIG}: {exc}") from None
    weights_path = next((folder / n for n in ADAPTER_WEIGHTS if (folder / n).is_file()), None)
    if weights_path is None:
        raise AdapterError(f"{folder}: no adapter_model.safetensors")
    tensors = (load_file(str(weights_path)) if weights_path.suffix == ".safetensors"
               else torch.load(weights_path, map_location="cpu", weights_only=True))
    rank, alpha = int(config.get("r", 8)), float(config.get("lora_alpha", 8))
    scale = alpha / (rank ** 0.5) if config.get("use_rslora") else alpha / rank
    pairs: dict[tuple[int, str, str], dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        match = _KEY.search(name)
        if match is None:
            continue
        layer, block, proj, which = int(match[1]), match[2], match[3], match[4]
        pairs.setdefault((layer, block, proj), {})[which] = tensor.float()
    deltas = {}
    for key, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise AdapterError(f"{folder}: {key} has only lora_{''.join(ab)}")
        deltas[key] = scale * (ab["B"] @ ab["A"])  # [out, in]
    if not deltas:
        raise AdapterError(f"{folder}: no LoRA weights for q/k/v/o/gate/up/down projections")
    return LoraAdapter(deltas, rank, alpha)


class AdapterSlot:
    """Holds the base copies of merged weights and applies one adapter at a time to a model."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._base: dict[str, torch.Tensor] = {}

    def apply(self, adapter: LoraAdapter | None) -> None:
        """Make the model's weights base + ``adapter`` (None: the base model again)."""
        params = dict(self.model.named_parameters())
        for name, base in self._base.items():
            with torch.no_grad():
                params[name].copy_(base)
        if adapter is None:
            return
        for (layer, block, proj), delta in adapter.deltas.items():
            fused, part = FUSED[proj]
            name = f"layers.{layer}.{block}.{fused}.weight"
            if name not in params:
                raise AdapterError(f"adapter targets {name}, which this model does not have")
            param = params[name]
            if param.dtype not in (torch.float32, torch.bfloat16, torch.float16):
                raise AdapterError(f"{name} is quantized ({param.dtype}); use weight_quant='none' with adapters")
            if name not in self._base:
                self._base[name] = param.detach().clone()
            rows = self._rows(fused, part, layer)
            merged = self._base[name][rows].float() + delta.to(param.device)
            with torch.no_grad():
                param[rows] = merged.to(param.dtype)

    def _rows(self, fused: str, part: int, layer: int) -> slice:
        cfg = self.model.config
        if fused == "qkv_proj":
            q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
            starts = (0, q, q + kv)
            sizes = (q, kv, kv)
            return slice(starts[part], starts[part] + sizes[part])
        if fused == "gate_up_proj":
            return slice(part * cfg.intermediate_size, (part + 1) * cfg.intermediate_size)
        return slice(None)
