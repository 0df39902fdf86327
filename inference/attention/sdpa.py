"""Reference paged attention over ``torch.nn.functional.scaled_dot_product_attention`` (CPU and GPU).

Generated rows (decode tokens, speculative drafts, generated tokens recomputed after preemption) are
batched into one SDPA call over their gathered, padded K/V, one query per row with its own context length
and the query heads of each KV head grouped so no K/V repeat is needed: a generated token gets the same
numbers whether it runs alone, next to others or as a draft. Prompt rows run one SDPA call per sequence:
a fresh prompt attends causally to its own new K/V; a chunk after cached tokens gathers its whole context.
On CPU, ``decode_kernel`` "native" runs the generated rows through our paged kernel instead, reading
K/V in their blocks (``inference/attention/cpu_decode.py``: chosen by measurement, in eager and compiled
steps alike). On CPU with bf16, ``prompt_kernel`` "native" runs prompt rows through our kernel instead of SDPA (chosen by
measurement per CPU and head shape, ``inference/attention/cpu_prompt.py``). With ``generated_native`` (the
runner sets it where decode steps run eagerly) generated rows take our kernel too: each sequence's rows,
prompt and generated alike, in one call. The kernel gives a query the same bits whatever rows come with it,
so a generated token's attention is the same alone, batched or as a draft, and a verification of 4 drafts
attends ~2.5x faster than SDPA's 5 padded rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inference.attention import cpu_decode, cpu_prompt
from inference.attention.metadata import AttentionMetadata, LayerKVCache
from inference.attention.paged_kv import gather_kv, sdpa_decode, write_kv


class SdpaAttention:
    """Paged attention reference backend. Stateless; per-step scratch lives in ``meta.backend_state``."""

    name = "sdpa"

    def __init__(self) -> None:
        self.prompt_kernel = cpu_prompt.SDPA
        """What runs prompt rows: "sdpa", or "native" (set by the runner through :meth:`choose_prompt_kernel`)."""
        self.generated_native = False
        """Generated rows through our kernel as well (only with ``prompt_kernel`` "native")."""
        self.decode_kernel = cpu_decode.SDPA
        """What runs generated rows otherwise: "sdpa" or "native" (our paged kernel; :meth:`choose_decode_kernel`)."""

    def choose_prompt_kernel(self, num_heads: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype,
                             device: torch.device, asked: str = "auto", generated_rows: bool = False) -> str:
        """Measure or take the prompt rows' kernel; ``generated_rows``: generated rows may follow it (not
        where a compiled decode graph, built around SDPA, runs them)."""
        self.prompt_kernel = cpu_prompt.choose(num_heads, num_kv_heads, head_dim, dtype, device, asked)
        self.generated_native = generated_rows and self.prompt_kernel == cpu_prompt.NATIVE
        return self.prompt_kernel

    def choose_decode_kernel(self, num_heads: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype,
                             kv_dtype: torch.dtype, device: torch.device, asked: str = "auto") -> str:
        """Measure or take the generated rows' kernel (``kv_dtype``: how the cache stores K/V)."""
        self.decode_kernel = cpu_decode.choose(num_heads, num_kv_heads, head_dim, dtype, kv_dtype, device, asked)
        return self.decode_kernel

    def write_kv(self, cache: LayerKVCache, k: torch.Tensor, v: torch.Tensor, meta: AttentionMetadata) -> None:
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
        if self.generated_native and q.dtype == torch.bfloat16:
            return self._by_sequence(q, k, v, cache, meta, scale)
        state = self.prepare(meta, cache.block_size)
        if not state["prefill_parts"]:  # generated rows only (every decode step): they are all of q, in order
            return self._decode(q, cache, state, scale, whole=True)
        out = torch.empty_like(q)
        if state["decode_rows"]:
            out[state["decode_tokens"]] = self._decode(q, cache, state, scale)
        for i, start, num_rows in state["prefill_parts"]:
            end = start + num_rows
            out[start:end] = self._prefill(q[start:end], k[start:end], v[start:end], cache, meta, i, scale)
        return out

    def _by_sequence(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: LayerKVCache,
                     meta: AttentionMetadata, scale: float) -> torch.Tensor:
        """Every row of each sequence through our kernel, one call per sequence."""
        starts = meta.query_start_loc_list
        if meta.num_seqs == 1:
            return self._prefill(q, k, v, cache, meta, 0, scale)
        out = torch.empty_like(q)
        for i in range(meta.num_seqs):
            s, e = starts[i], starts[i + 1]
            out[s:e] = self._prefill(q[s:e], k[s:e], v[s:e], cache, meta, i, scale)
        return out

    def prepare(self, meta: AttentionMetadata, block_size: int) -> dict:
        """This step's plan, made by the first layer and kept in ``meta.backend_state``: the generated rows
        (batched like decode queries, each attending to its own context length) and the prompt part of each
        sequence (one SDPA call each)."""
        if (state := meta.backend_state.get("sdpa")) is not None:
            return state
        rows, row_seq, row_lens, parts = [], [], [], []
        for i in range(meta.num_seqs):
            start, num_prompt = meta.query_start_loc_list[i], meta.prompt_rows(i)
            if num_prompt:
                parts.append((i, start, num_prompt))
            first = meta.num_computed_list[i] + num_prompt  # position of the first generated row
            for j in range(meta.query_lens_list[i] - num_prompt):
                rows.append(start + num_prompt + j)
                row_seq.append(i)
                row_lens.append(first + j + 1)
        state: dict = {"decode_rows": rows, "prefill_parts": parts}
        if rows:
            dev = meta.block_tables.device
            num_blocks = -(-max(row_lens) // block_size)
            lens = torch.tensor(row_lens, dtype=torch.int32, device=dev)
            keep = torch.arange(num_blocks * block_size, device=dev).unsqueeze(0) < lens.unsqueeze(1)
            state["decode_tokens"] = torch.tensor(rows, device=dev)
            state["decode_tables"] = meta.block_tables[torch.tensor(row_seq, device=dev), :num_blocks]
            state["decode_lens"] = lens
            state["decode_mask"] = keep[:, None, None, :]  # [num_rows, 1, 1, L]
        meta.backend_state["sdpa"] = state
        return state

    def _decode(self, q: torch.Tensor, cache: LayerKVCache, state: dict, scale: float,
                whole: bool = False) -> torch.Tensor:
        """The generated rows' attention; ``whole``: they are all the rows of ``q``."""
        qd = q if whole else q[state["decode_tokens"]]  # [R, H, d]
        if self.decode_kernel == cpu_decode.NATIVE:
            return cpu_decode.attend(qd, cache, state["decode_tables"], state["decode_lens"], scale)
        return sdpa_decode(qd, cache, state["decode_tables"], state["decode_mask"], scale)

    def _prefill(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        cache: LayerKVCache,
        meta: AttentionMetadata,
        i: int,
        scale: float,
    ) -> torch.Tensor:
        """The rows ``q`` of sequence ``i`` (its prompt rows, or with ``generated_native`` all its rows), which
        start at its first uncomputed position."""
        num_computed = meta.num_computed_list[i]
        seq_len = num_computed + q.shape[0]
        native = self.prompt_kernel == cpu_prompt.NATIVE and q.dtype == torch.bfloat16
        if num_computed == 0:
            if native:
                return cpu_prompt.attend(q, k, v, scale)
            return cpu_prompt.sdpa_causal(q, k, v, scale)
        num_blocks = -(-seq_len // cache.block_size)
        kc, vc = gather_kv(cache, meta.block_tables[i : i + 1, :num_blocks], q.dtype)
        if native:
            return cpu_prompt.attend(q, kc[0, :seq_len], vc[0, :seq_len], scale)
        qt = q.transpose(0, 1).unsqueeze(0)  # [1, H, n, d]
        kc, vc = kc[:, :seq_len].transpose(1, 2), vc[:, :seq_len].transpose(1, 2)  # [1, kvh, L, d]
        rows = torch.arange(num_computed, seq_len, device=q.device).unsqueeze(1)
        mask = torch.arange(seq_len, device=q.device).unsqueeze(0) <= rows  # [n, L]
        o = F.scaled_dot_product_attention(qt, kc, vc, attn_mask=mask, scale=scale, enable_gqa=True)
        return o.squeeze(0).transpose(0, 1)
