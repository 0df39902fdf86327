"""LoRA adapters in peft's folder format: read, check that we can apply them exactly, or refuse.

An adapter is a set of low-rank pairs, one per HF projection it targets: ``delta(x) = scale * B @ (A @ x)``
with ``A [r, in]``, ``B [out, r]`` kept in fp32 as trained. ``inference/lora_layers.py`` adds the deltas to
the base model's outputs per request (unmerged). Per-module ranks (``rank_pattern``) come from the tensor
shapes and per-module alphas (``alpha_pattern``) are matched as peft matches them, so both are exact.
Anything that changes what the adapter computes beyond that (DoRA, trained biases, ``modules_to_save``,
extra tokens, ...) is refused with an ``AdapterError`` naming the feature, never silently dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>(?:model\.)?layers\.(?P<layer>\d+)\."
                  r"(?P<block>self_attn|mlp)\.(?P<proj>\w+))\.lora_(?P<which>[AB])(?:\.default)?\.weight$")
NEUTRAL_CONFIG = {
    "r", "lora_alpha", "rank_pattern", "alpha_pattern", "use_rslora", "target_modules", "exclude_modules",
    "layers_to_transform", "layers_pattern", "lora_dropout", "init_lora_weights", "base_model_name_or_path",
    "revision", "task_type", "inference_mode", "peft_type", "auto_mapping", "peft_version", "runtime_config",
    "loftq_config", "eva_config", "corda_config", "lora_ga_config", "megatron_core", "qalora_group_size",
    "ensure_weight_tying",
}
"""Config keys that do not change what a plain LoRA computes at inference (training-time or init options).
Any other key set to a non-default value is a feature we do not apply, so the adapter is refused."""
ALLOWED_VALUES = {"bias": ("none",), "peft_type": ("LORA",)}


class AdapterError(ValueError):
    """The adapter folder is unreadable, uses a feature the engine cannot apply exactly, or does not fit."""


@dataclass(frozen=True)
class LoraPair:
    """One targeted HF projection: ``delta(x) = scale * (x @ a.T) @ b.T``."""

    a: torch.Tensor
    """[rank, in_features] fp32."""
    b: torch.Tensor
    """[out_features, rank] fp32."""
    scale: float


@dataclass(frozen=True)
class LoraAdapter:
    """Low-rank pairs keyed by (layer index, block, HF projection name), e.g. ``(0, "self_attn", "q_proj")``."""

    pairs: dict[tuple[int, str, str], LoraPair]

    @property
    def num_parameters(self) -> int:
        return sum(p.a.numel() + p.b.numel() for p in self.pairs.values())


def read_adapter(folder: Path) -> LoraAdapter:
    """Read a peft LoRA folder (``adapter_config.json`` + ``adapter_model.safetensors``); AdapterError if it
    cannot be read or applied exactly."""
    folder = Path(folder)
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{folder}: cannot read {ADAPTER_CONFIG}: {exc}") from None
    if not isinstance(config, dict):
        raise AdapterError(f"{folder}: {ADAPTER_CONFIG} is not a JSON object")
    check_config(config, folder)
    return LoraAdapter(_pairs(_tensors(folder), config, folder))


def adapter_digest(folder: Path) -> str:
    """sha256 of the adapter's config and weights: the same digest means the same adapter."""
    import hashlib

    folder = Path(folder)
    h = hashlib.sha256()
    for name in (ADAPTER_CONFIG, *ADAPTER_WEIGHTS):
        if (folder / name).is_file():
            with (folder / name).open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def check_config(config: dict[str, Any], where: Path | str) -> None:
    """Raise AdapterError naming the first config feature that a plain unmerged LoRA would apply wrongly."""
    for key, allowed in ALLOWED_VALUES.items():
        if key in config and config[key] not in allowed:
            raise AdapterError(f"{where}: {key}={config[key]!r} is not supported (only {', '.join(allowed)})")
    for key, value in config.items():
        if key not in NEUTRAL_CONFIG and key not in ALLOWED_VALUES and value:
            raise AdapterError(f"{where}: {key}={json.dumps(value)[:80]} is not supported by this engine "
                               "(plain LoRA on q/k/v/o/gate/up/down projections only)")
    if config.get("use_rslora") and (config.get("rank_pattern") or config.get("alpha_pattern")):
        raise AdapterError(f"{where}: use_rslora with rank_pattern/alpha_pattern is not supported")


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    path = next((folder / n for n in ADAPTER_WEIGHTS if (folder / n).is_file()), None)
    if path is None:
        raise AdapterError(f"{folder}: no adapter_model.safetensors")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: one clear line, whatever the loader raised
        raise AdapterError(f"{folder}: cannot read {path.name}: {exc}") from None


def _pairs(tensors: dict[str, torch.Tensor], config: dict[str, Any], folder: Path) -> dict:
    halves: dict[tuple[int, str, str], dict[str, torch.Tensor]] = {}
    modules: dict[tuple[int, str, str], str] = {}
    for name, tensor in tensors.items():
        match = _KEY.match(name)
        if match is None or match["proj"] not in PROJECTIONS:
            raise AdapterError(f"{folder}: weight {name} is not a LoRA pair of a q/k/v/o/gate/up/down projection "
                               "(e.g. lm_head, embeddings, DoRA magnitudes or biases): not supported")
        key = (int(match["layer"]), match["block"], match["proj"])
        halves.setdefault(key, {})[match["which"]] = tensor.float()
        modules[key] = match["module"]
    if not halves:
        raise AdapterError(f"{folder}: no LoRA weights for q/k/v/o/gate/up/down projections")
    pairs = {}
    for key, ab in halves.items():
        if set(ab) != {"A", "B"}:
            raise AdapterError(f"{folder}: {modules[key]} has only lora_{''.join(ab)}")
        a, b = ab["A"], ab["B"]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise AdapterError(f"{folder}: {modules[key]}: lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} "
                               "do not form a low-rank pair")
        pairs[key] = LoraPair(a.contiguous(), b.contiguous(), _scale(config, modules[key], a.shape[0], folder))
    return pairs


def _scale(config: dict[str, Any], module: str, rank: int, folder: Path) -> float:
    """peft's scaling for ``module``: alpha / r (alpha / sqrt(r) with rsLoRA), patterns matched as peft does."""
    expected = int(_pattern_value(config.get("rank_pattern") or {}, module, config.get("r", 8)))
    if expected != rank:
        raise AdapterError(f"{folder}: {module} has rank {rank} but the config says {expected}")
    alpha = float(_pattern_value(config.get("alpha_pattern") or {}, module, config.get("lora_alpha", 8)))
    return alpha / rank**0.5 if config.get("use_rslora") else alpha / rank


def _pattern_value(pattern: dict[str, Any], module: str, default: Any) -> Any:
    """The value of the first pattern key matching the end of ``module`` (peft's ``get_pattern_key``)."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default
