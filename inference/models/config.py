"""ModelConfig: the shape of a Llama-family model, read from an HF config.json or GGUF metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED_ARCHS = ("qwen2", "llama")


@dataclass
class RopeScaling:
    """Llama-3 style frequency scaling (``rope_type == "llama3"``)."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclass
class ModelConfig:
    """Everything the forward needs to know about a model's shape.

    Invariants: ``num_heads % num_kv_heads == 0``; ``head_dim * num_heads`` need not equal ``hidden_size``.
    """

    arch: str
    """"qwen2" (q/k/v biases) or "llama" (Llama, SmolLM2, Mistral-like without sliding window)."""
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    """True for Qwen2: q/k/v projections carry biases."""
    rope_scaling: RopeScaling | None = None
    bos_token_id: int | None = None
    eos_token_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.arch not in SUPPORTED_ARCHS:
            raise ValueError(f"unsupported model architecture {self.arch!r}; supported: {SUPPORTED_ARCHS}")
        for name in ("num_layers", "hidden_size", "intermediate_size", "num_heads", "num_kv_heads",
                     "head_dim", "vocab_size", "max_position_embeddings"):
            if getattr(self, name) < 1:
                raise ValueError(f"model config {name} must be >= 1, got {getattr(self, name)}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")

    @classmethod
    def from_hf_dict(cls, cfg: dict[str, Any]) -> ModelConfig:
        """Build from the contents of an HF ``config.json``."""
        model_type = cfg.get("model_type", "")
        arch = {"qwen2": "qwen2", "llama": "llama", "mistral": "llama"}.get(model_type)
        if arch is None:
            raise ValueError(f"unsupported model_type {model_type!r} in config.json (want qwen2 or llama)")
        if model_type == "mistral" and cfg.get("sliding_window"):
            raise ValueError("sliding-window attention is not supported")
        num_heads = cfg["num_attention_heads"]
        eos = cfg.get("eos_token_id")
        rope_params = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
        return cls(
            arch=arch,
            num_layers=cfg["num_hidden_layers"],
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_heads=num_heads,
            num_kv_heads=cfg.get("num_key_value_heads") or num_heads,
            head_dim=cfg.get("head_dim") or cfg["hidden_size"] // num_heads,
            vocab_size=cfg["vocab_size"],
            max_position_embeddings=cfg.get("max_position_embeddings", 2048),
            rope_theta=float(rope_params.get("rope_theta") or cfg.get("rope_theta") or 10000.0),
            rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            attention_bias=arch == "qwen2" or bool(cfg.get("attention_bias", False)),
            rope_scaling=_rope_scaling(rope_params),
            bos_token_id=cfg.get("bos_token_id"),
            eos_token_ids=list(eos) if isinstance(eos, list) else ([eos] if eos is not None else []),
        )

    @classmethod
    def from_json(cls, path: Path) -> ModelConfig:
        try:
            return cls.from_hf_dict(json.loads(Path(path).read_text()))
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"bad model config {path}: {exc!r}") from exc

    @classmethod
    def from_gguf_fields(cls, meta: dict[str, Any]) -> ModelConfig:
        """Build from GGUF key/value metadata (``general.architecture`` + ``<arch>.*`` keys)."""
        arch = meta.get("general.architecture")
        if arch not in SUPPORTED_ARCHS:
            raise ValueError(f"unsupported GGUF architecture {arch!r}; supported: {SUPPORTED_ARCHS}")

        def key(name: str, default: Any = None) -> Any:
            return meta.get(f"{arch}.{name}", default)

        num_heads = int(key("attention.head_count"))
        hidden = int(key("embedding_length"))
        eos = meta.get("tokenizer.ggml.eos_token_id")
        return cls(
            arch=arch,
            num_layers=int(key("block_count")),
            hidden_size=hidden,
            intermediate_size=int(key("feed_forward_length")),
            num_heads=num_heads,
            num_kv_heads=int(key("attention.head_count_kv", num_heads)),
            head_dim=int(key("attention.key_length", hidden // num_heads)),
            vocab_size=int(key("vocab_size", 0)) or int(meta.get("_vocab_size", 0)),
            max_position_embeddings=int(key("context_length", 2048)),
            rope_theta=float(key("rope.freq_base", 10000.0)),
            rms_norm_eps=float(key("attention.layer_norm_rms_epsilon", 1e-6)),
            tie_word_embeddings=bool(meta.get("_tied", False)),
            attention_bias=arch == "qwen2",
            bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
            eos_token_ids=[int(eos)] if eos is not None else [],
        )


def _rope_scaling(params: dict[str, Any]) -> RopeScaling | None:
    kind = params.get("rope_type") or params.get("type")
    if kind in (None, "default"):
        return None
    if kind != "llama3":
        raise ValueError(f"unsupported rope scaling {kind!r} (only llama3 is implemented)")
    return RopeScaling(
        factor=float(params["factor"]),
        low_freq_factor=float(params["low_freq_factor"]),
        high_freq_factor=float(params["high_freq_factor"]),
        original_max_position_embeddings=int(params["original_max_position_embeddings"]),
    )
