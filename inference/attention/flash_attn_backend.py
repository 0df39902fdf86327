"""The "flash_attn" attention backend: FlashAttention-2 varlen kernels over the gathered paged context.

Available only where the ``flash_attn`` package imports; importing this module otherwise raises
:class:`BackendUnavailable`, so asking for the backend fails loudly instead of silently using another.
FA2's paged mode needs 256-token pages, so each step gathers every sequence's context once per layer
into a contiguous varlen batch (``causal=True`` aligns the queries to the end of their keys, which is
exactly decode / chunked prefill). INT8 KV is not supported here: use the triton backend.
"""

from __future__ import annotations

import torch

from inference.attention.errors import BackendUnavailable
from inference.attention.metadata import AttentionMetadata, LayerKVCache
from inference.attention.paged_kv import write_kv

try:
    from flash_attn import flash_attn_varlen_func
except ImportError as exc:
    raise BackendUnavailable(
        "attention backend 'flash_attn' needs the 'flash_attn' package, which is not installed"
    ) from exc


class FlashAttnAttention:
    """Paged attention through ``flash_attn_varlen_func``; per-step gather indices in ``meta.backend_state``."""

    name = "flash_attn"

    def write_kv(self, cache: LayerKVCache, k: torch.Tensor, v: torch.Tensor, meta: AttentionMetadata) -> None:
        _check(cache, k)
        write_kv(cache, k, v, meta.slot_mapping)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        cache: LayerKVCache,
        meta: AttentionMetadata,
        scale: float,
    ) -> torch.Tensor:
        """Attention output ``[num_tokens, num_heads, head_dim]``; the new K/V must already be written."""
        _check(cache, q)
        state = meta.backend_state.get("flash_attn") or _plan(meta, cache.block_size)
        meta.backend_state["flash_attn"] = state
        num_kv_heads, head_dim = cache.k.shape[2], cache.k.shape[3]
        slots = state["slots"]
        k_ctx = cache.k.view(-1, num_kv_heads, head_dim)[slots]  # [total_context, kvh, d]
        v_ctx = cache.v.view(-1, num_kv_heads, head_dim)[slots]
        return flash_attn_varlen_func(
            q, k_ctx, v_ctx, meta.query_start_loc, state["cu_seqlens_k"], meta.max_query_len,
            meta.max_seq_len, softmax_scale=scale, causal=True,
        )


def _plan(meta: AttentionMetadata, block_size: int) -> dict:
    device = meta.seq_lens.device
    seq_lens = meta.seq_lens.long()
    cu_k = torch.zeros(meta.num_seqs + 1, dtype=torch.int32, device=device)
    cu_k[1:] = torch.cumsum(seq_lens, 0)
    seq_of = torch.repeat_interleave(torch.arange(meta.num_seqs, device=device), seq_lens)
    pos = torch.arange(seq_of.numel(), device=device) - cu_k[:-1].long()[seq_of]
    blocks = meta.block_tables[seq_of, pos // block_size].long()
    return {"cu_seqlens_k": cu_k, "slots": blocks * block_size + pos % block_size}


def _check(cache: LayerKVCache, t: torch.Tensor) -> None:
    if cache.quantized:
        raise ValueError("the flash_attn backend does not read INT8 KV; use attention_backend='triton'")
    if t.device.type != "cuda":
        raise RuntimeError(f"the flash_attn backend needs CUDA tensors (got {t.device})")
