"""What every attention backend reads: the paged KV cache of one layer and the step's batch layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class LayerKVCache:
    """K/V storage of one layer, in the paged layout every attention backend reads and writes.

    ``k``/``v``: ``[num_blocks, block_size, num_kv_heads, head_dim]`` in the model dtype, or int8 when
    ``k_scale``/``v_scale`` (``[num_blocks, block_size, num_kv_heads]``, ``kv_cache.quant.SCALE_DTYPE``) are set
    (``inference/kv_cache/quant.py`` quantizes and dequantizes one token per head).
    """

    k: torch.Tensor
    v: torch.Tensor
    k_scale: torch.Tensor | None = None
    v_scale: torch.Tensor | None = None

    @property
    def quantized(self) -> bool:
        return self.k_scale is not None

    @property
    def block_size(self) -> int:
        return self.k.shape[1]

    def copy_block(self, src: int, dst: int) -> None:
        """Copy-on-write: block ``dst`` becomes a copy of block ``src``."""
        for t in (self.k, self.v, self.k_scale, self.v_scale):
            if t is not None:
                t[dst].copy_(t[src])


@dataclass
class AttentionMetadata:
    """Layout of one step's flat token batch; built once per step, read by every layer.

    Tokens of sequence ``i`` are ``[query_start_loc[i], query_start_loc[i+1])`` of the flat batch and sit
    at positions ``[num_computed[i], seq_lens[i])`` of that sequence. The ``*_list`` fields are the same
    numbers as Python ints so CPU code can loop without device syncs.
    """

    slot_mapping: torch.Tensor
    """[num_tokens] int64: ``block_id * block_size + position % block_size`` of each new token."""
    query_start_loc: torch.Tensor
    """[num_seqs + 1] int32 cumulative query lengths."""
    seq_lens: torch.Tensor
    """[num_seqs] int32: context length of each sequence after this step."""
    block_tables: torch.Tensor
    """[num_seqs, max_num_blocks] int32, padded with 0 past each sequence's table."""
    query_start_loc_list: list[int]
    query_lens_list: list[int]
    seq_lens_list: list[int]
    num_computed_list: list[int]
    num_prompt_rows_list: list[int] | None = None
    """Leading rows of each sequence's query that are prompt rows; the rest are generated rows, which the
    ``sdpa`` backend computes one by one like decode queries (the same numbers whatever else runs).
    None: a one-token query is a generated row, longer queries are prompt rows."""
    backend_state: dict[str, Any] = field(default_factory=dict)
    """Scratch a backend may fill once per step (e.g. decode index tensors) and reuse across layers."""

    def prompt_rows(self, i: int) -> int:
        """How many leading query rows of sequence ``i`` are prompt rows."""
        if self.num_prompt_rows_list is not None:
            return self.num_prompt_rows_list[i]
        n = self.query_lens_list[i]
        return 0 if n == 1 else n

    @property
    def num_seqs(self) -> int:
        return len(self.seq_lens_list)

    @property
    def max_query_len(self) -> int:
        return max(self.query_lens_list, default=0)

    @property
    def max_seq_len(self) -> int:
        return max(self.seq_lens_list, default=0)
