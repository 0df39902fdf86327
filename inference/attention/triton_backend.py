"""The "triton" attention backend: fused paged KV write, split-K decode and paged prefill kernels.

Runs on CUDA; on CPU only under Triton's interpreter (``TRITON_INTERPRET=1`` set before this module is
imported), which the unit tests use. Any other CPU use raises a clear error rather than falling back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inference.attention.errors import BackendUnavailable
from inference.attention.metadata import AttentionMetadata, LayerKVCache

try:
    import triton  # noqa: F401 - imported to report a clear error below
except ImportError as exc:  # pragma: no cover - exercised where triton is absent
    raise BackendUnavailable("attention backend 'triton' needs the 'triton' package (pip install triton)") from exc

from inference.attention import triton_cache, triton_decode, triton_prefill  # noqa: E402


def interpreted() -> bool:
    """True when the kernels were decorated in Triton's interpreter mode (they then run on CPU tensors)."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(triton_decode._decode_kernel, InterpretedFunction)


@dataclass
class _StepPlan:
    """Per-step launch plan, built once from host lists and shared by every layer."""

    pure_decode: bool
    decode_tokens: torch.Tensor | None
    decode_seqs: torch.Tensor | None
    prefill_seqs: torch.Tensor | None
    max_prefill_len: int
    num_splits: int


class TritonAttention:
    """Paged attention over Triton kernels. Stateless; the per-step plan lives in ``meta.backend_state``.

    A batch of only decodes launches the decode kernel over all sequences with no index tensors, so the
    launch reads nothing but device tensors (CUDA-graph capturable). ``num_splits`` fixes the split-K
    factor (e.g. for graph capture); None picks it from the step's longest context.
    """

    name = "triton"

    def __init__(self, num_splits: int | None = None) -> None:
        self.num_splits = num_splits

    def write_kv(self, cache: LayerKVCache, k: torch.Tensor, v: torch.Tensor, meta: AttentionMetadata) -> None:
        self._check_device(k)
        triton_cache.write_kv(cache, k, v, meta.slot_mapping)

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
        self._check_device(q)
        plan = meta.backend_state.get("triton")
        if plan is None:
            plan = meta.backend_state["triton"] = self._plan(meta, cache.k.shape[2])
        out = torch.empty_like(q)
        if plan.pure_decode or plan.decode_tokens is not None:
            triton_decode.paged_decode(
                q, cache, meta.block_tables, meta.seq_lens, scale, out,
                token_idx=plan.decode_tokens, seq_idx=plan.decode_seqs, num_splits=plan.num_splits,
            )
        if plan.prefill_seqs is not None:
            triton_prefill.paged_prefill(
                q, k, v, cache, meta.block_tables, meta.query_start_loc, meta.seq_lens, plan.prefill_seqs,
                plan.max_prefill_len, scale, out,
            )
        return out

    def _plan(self, meta: AttentionMetadata, num_kv_heads: int) -> _StepPlan:
        decode = [i for i, n in enumerate(meta.query_lens_list) if n == 1]
        prefill = [i for i, n in enumerate(meta.query_lens_list) if n > 1]
        max_ctx = max((meta.seq_lens_list[i] for i in decode), default=0)
        splits = self.num_splits or triton_decode.choose_num_splits(max_ctx, len(decode), num_kv_heads)
        pure = bool(decode) and not prefill and len(decode) == meta.num_seqs
        device = meta.seq_lens.device

        def index(values: list[int]) -> torch.Tensor | None:
            return torch.tensor(values, dtype=torch.int32, device=device) if values and not pure else None

        return _StepPlan(
            pure_decode=pure,
            decode_tokens=index([meta.query_start_loc_list[i] for i in decode]),
            decode_seqs=index(decode),
            prefill_seqs=torch.tensor(prefill, dtype=torch.int32, device=device) if prefill else None,
            max_prefill_len=max((meta.query_lens_list[i] for i in prefill), default=0),
            num_splits=splits,
        )

    @staticmethod
    def _check_device(t: torch.Tensor) -> None:
        if t.device.type != "cuda" and not interpreted():
            raise RuntimeError(
                f"the triton attention backend needs CUDA tensors (got {t.device}); on CPU use "
                "attention_backend='sdpa' (tests: set TRITON_INTERPRET=1 before importing the kernels)"
            )
