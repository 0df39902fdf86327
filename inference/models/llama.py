"""Our Llama-family forward (Qwen2 / Qwen2.5-Coder, Llama, SmolLM2) over a flat batch of tokens.

No padding: the batch is one ``[num_tokens]`` row of token ids with their positions; where each token's
K/V goes and what it attends to is in :class:`AttentionMetadata`. Numerics follow HF transformers
(RMSNorm in fp32, RoPE tables in fp32 cast to the activation dtype, residual adds in the model dtype).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence, Set

import torch
import torch.nn.functional as F
from torch import nn

from inference.attention.metadata import AttentionMetadata, LayerKVCache
from inference.models.config import ModelConfig, RopeScaling

Rope = tuple[torch.Tensor, torch.Tensor]
"""One step's RoPE tables ``(cos, sign-folded sin)``, each ``[T, 1, head_dim]``."""


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # HF's order (normalize in fp32, narrow, scale); torch's one-kernel rms_norm: 8 small ops were ~40%
        # of a decode step's time outside the matmuls
        return self.weight * F.rms_norm(x.float(), self.weight.shape, eps=self.eps).to(x.dtype)


def rope_inv_freq(cfg: ModelConfig) -> torch.Tensor:
    """Inverse RoPE frequencies ``[head_dim // 2]`` (with Llama-3 scaling when configured)."""
    dim = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    return inv_freq if cfg.rope_scaling is None else _llama3_scale(inv_freq, cfg.rope_scaling)


def _llama3_scale(inv_freq: torch.Tensor, s: RopeScaling) -> torch.Tensor:
    low_wavelen = s.original_max_position_embeddings / s.low_freq_factor
    high_wavelen = s.original_max_position_embeddings / s.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq)
    smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (
        s.high_freq_factor - s.low_freq_factor
    )
    smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, smoothed, scaled)


class Rotary(nn.Module):
    """Precomputed cos/sin tables ``[max_positions, head_dim]`` in fp32 (HF's rotate-half layout)."""

    def __init__(self, cfg: ModelConfig, max_positions: int) -> None:
        super().__init__()
        if torch.get_default_device().type == "meta":  # a shape-only build (the loader builds the real tables;
            empty = torch.empty(max_positions, cfg.head_dim)  # meta compute kernels import torch._dynamo)
            self.register_buffer("cos", empty, persistent=False)
            self.register_buffer("sin", empty.clone(), persistent=False)
            return
        freqs = torch.outer(torch.arange(max_positions, dtype=torch.float32), rope_inv_freq(cfg))
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos`` and sign-folded ``sin`` ``[T, 1, d]`` in ``dtype`` for one step (shared by every layer)."""
        half = self.cos.shape[-1] // 2
        sin = self.sin[positions]
        sin[:, :half].neg_()
        return self.cos[positions].to(dtype).unsqueeze(1), sin.to(dtype).unsqueeze(1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF's ``x * cos + rotate_half(x) * sin``, bit for bit: ``rotate_half(x)`` is ``x`` rolled by half a head
    with the sign folded into ``sin`` (see :meth:`Rotary.tables`)."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * sin


class Attention(nn.Module):
    """GQA self-attention with fused q/k/v projection (biases for Qwen2)."""

    def __init__(self, cfg: ModelConfig, backend: object) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_size, self.kv_size = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
        self.qkv_proj = nn.Linear(cfg.hidden_size, self.q_size + 2 * self.kv_size, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(self.q_size, cfg.hidden_size, bias=False)
        self.scale = cfg.head_dim**-0.5
        self.backend = backend

    def forward(self, x: torch.Tensor, rope: Rope, cache: LayerKVCache, meta: AttentionMetadata) -> torch.Tensor:
        num_tokens = x.shape[0]
        qkv = self.qkv_proj(x)
        # q and k rotate as one [T, H + kvh, d] view (one set of elementwise ops instead of two)
        qk = apply_rotary(qkv[:, : self.q_size + self.kv_size].view(num_tokens, -1, self.head_dim), *rope)
        q, k = qk[:, : self.num_heads], qk[:, self.num_heads :]  # [T, H, d], [T, kvh, d]
        v = qkv[:, self.q_size + self.kv_size :].view(num_tokens, self.num_kv_heads, self.head_dim)
        self.backend.write_kv(cache, k, v, meta)
        o = self.backend.forward(q, k, v, cache, meta, self.scale)  # [T, H, d]
        return self.o_proj(o.reshape(num_tokens, self.q_size))


class MLP(nn.Module):
    """SwiGLU with fused gate/up projection."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.intermediate_size = cfg.intermediate_size
        self.gate_up_proj = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).split(self.intermediate_size, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, backend: object) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, backend)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, h: torch.Tensor, rope: Rope, cache: LayerKVCache, meta: AttentionMetadata) -> torch.Tensor:
        h = h + self.self_attn(self.input_layernorm(h), rope, cache, meta)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    """Decoder-only Llama-family model. ``lm_head`` shares the embedding's weight when tied."""

    def __init__(self, cfg: ModelConfig, backend: object, max_positions: int | None = None) -> None:
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, backend) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.rotary = Rotary(cfg, max_positions or cfg.max_position_embeddings)

    def forward(
        self, input_ids: torch.Tensor, positions: torch.Tensor, kv_caches: list[LayerKVCache], meta: AttentionMetadata,
        check: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """Final hidden states ``[num_tokens, hidden]`` for flat ``input_ids``/``positions`` ``[num_tokens]``;
        ``check`` runs before each layer (it may raise to end the step there: see inference/stop_requests.py)."""
        h = self.embed_tokens(input_ids).to(self.norm.weight.dtype)  # a 16-bit table served to a float32 model
        rope = self.rotary.tables(positions, h.dtype)
        for layer, cache in zip(self.layers, kv_caches, strict=True):
            if check is not None:
                check()
            h = layer(h, rope, cache, meta)
        return self.norm(h)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """fp32 logits ``[n, vocab]`` for the rows of ``hidden`` that sample."""
        return self.lm_head(hidden).float()

    def load_hf_weights(self, weights: Mapping[str, torch.Tensor], in_place: Sequence[str] = (),
                        on_loaded: Callable[[str], None] | None = None) -> None:
        """Copy HF-named weights (``model.layers.0.self_attn.q_proj.weight``...) into the fused layout;
        ``in_place``: parameters (our names) already holding their weights, not read from ``weights``;
        ``on_loaded(name)`` runs after each parameter is filled (the loader quantizes there).

        Raises ``ValueError`` naming any missing or mis-shaped tensor; extra tensors are ignored.
        """
        own = dict(self.named_parameters(remove_duplicate=False))
        for name in in_place:
            own.pop(name)
        for name, tensor in hf_to_fused(weights, self.config, skip=set(in_place)):
            if name not in own:
                continue
            param = own.pop(name)
            if param.shape != tensor.shape:
                raise ValueError(f"weight {name}: expected shape {tuple(param.shape)}, got {tuple(tensor.shape)}")
            with torch.no_grad():
                param.copy_(tensor)
            del param, tensor
            if on_loaded is not None:
                on_loaded(name)
        if self.config.tie_word_embeddings:
            own.pop("lm_head.weight", None)
        if own:
            raise ValueError(f"missing weights: {sorted(own)[:5]}{' ...' if len(own) > 5 else ''}")


def hf_to_fused(weights: Mapping[str, torch.Tensor], cfg: ModelConfig,
                skip: Set[str] = frozenset()) -> Iterator[tuple[str, torch.Tensor]]:
    """HF tensors under this module's names (but those in ``skip``, never read), q/k/v and gate/up
    concatenated; each read from ``weights`` only when it is yielded, so a lazy mapping never holds more
    than one layer's tensors at once."""
    names = {short: name for name in weights if (short := name.removeprefix("model.")) not in skip}
    fused: set[str] = set()
    for i in range(cfg.num_layers):
        attn, mlp = f"layers.{i}.self_attn", f"layers.{i}.mlp"
        groups = [(f"{attn}.qkv_proj.{kind}", [f"{attn}.{p}_proj.{kind}" for p in "qkv"]) for kind in ("weight", "bias")]
        groups.append((f"{mlp}.gate_up_proj.weight", [f"{mlp}.gate_proj.weight", f"{mlp}.up_proj.weight"]))
        for target, parts in groups:
            if all(p in names for p in parts):
                fused.update(parts)
                yield target, torch.cat([weights[names[p]] for p in parts], dim=0)
    for short, name in names.items():
        if short not in fused:
            yield short, weights[name]
