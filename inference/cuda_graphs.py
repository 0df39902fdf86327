"""CUDA graphs for decode steps: one captured forward per batch-size bucket over static input buffers.

A decode step (every sequence runs one token) of ``n`` sequences replays the graph of the smallest
bucket >= ``n``. Inputs are copied device-to-device into buffers allocated once; padding rows get slot
-1 (their K/V write is skipped) and context length 0 (their attention output is zero), so a replay
needs no host sync. Only the "triton" backend is capturable: its pure-decode launch reads nothing but
device tensors, while the SDPA backend shapes its masks from host lists.

Invariant: graphs hold pointers to the model weights and ``kv_caches`` given at construction; after
the runner reallocates its KV cache it must build and capture a new :class:`DecodeCudaGraphs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from inference.attention.metadata import AttentionMetadata, LayerKVCache

BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class DecodeCudaGraphs:
    """Captured decode forwards of ``model(input_ids, positions, kv_caches, meta) -> hidden``."""

    def __init__(
        self,
        model: torch.nn.Module,
        kv_caches: list[LayerKVCache],
        max_num_seqs: int,
        max_model_len: int,
        buckets: Sequence[int] = BUCKETS,
    ) -> None:
        if not kv_caches or kv_caches[0].k.device.type != "cuda":
            raise ValueError("CUDA graphs need a model and KV cache on a CUDA device")
        names = {getattr(m.backend, "name", "?") for m in model.modules() if hasattr(m, "backend")}
        if names != {"triton"}:
            raise ValueError(f"CUDA graphs need the 'triton' attention backend, the model uses {sorted(names)}")
        self.model, self.kv_caches = model, kv_caches
        self.max_model_len = max_model_len
        self.buckets = sorted(b for b in buckets if b <= max_num_seqs) or [max_num_seqs]
        device = kv_caches[0].k.device
        max_bs, block_size = self.buckets[-1], kv_caches[0].block_size
        max_blocks = -(-max_model_len // block_size)
        self.input_ids = torch.zeros(max_bs, dtype=torch.int64, device=device)
        self.positions = torch.zeros(max_bs, dtype=torch.int64, device=device)
        self.slot_mapping = torch.full((max_bs,), -1, dtype=torch.int64, device=device)
        self.seq_lens = torch.zeros(max_bs, dtype=torch.int32, device=device)
        self.block_tables = torch.zeros(max_bs, max_blocks, dtype=torch.int32, device=device)
        self.query_start_loc = torch.arange(max_bs + 1, dtype=torch.int32, device=device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.outputs: dict[int, torch.Tensor] = {}
        self.num_replays = 0
        """Decode steps run by graph replay so far (benchmarks and tests read it)."""

    @property
    def max_batch(self) -> int:
        return self.buckets[-1]

    def bucket_for(self, num_seqs: int) -> int | None:
        """Smallest captured bucket holding ``num_seqs`` sequences; None when there is none."""
        return next((b for b in self.buckets if b >= num_seqs and b in self.graphs), None)

    @torch.inference_mode()
    def capture(self) -> None:
        """Warm up (compiles the kernels) and capture every bucket, largest first, in one memory pool."""
        pool = torch.cuda.graph_pool_handle()
        for bs in reversed(self.buckets):
            meta = self._static_meta(bs)
            self.model(self.input_ids[:bs], self.positions[:bs], self.kv_caches, meta)  # warm-up, off the graph
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            meta = self._static_meta(bs)
            with torch.cuda.graph(graph, pool=pool):
                self.outputs[bs] = self.model(self.input_ids[:bs], self.positions[:bs], self.kv_caches, meta)
            self.graphs[bs] = graph
        torch.cuda.synchronize()

    def run(self, input_ids: torch.Tensor, positions: torch.Tensor, meta: AttentionMetadata) -> torch.Tensor:
        """Hidden states ``[num_seqs, hidden]`` of a pure-decode step, by graph replay.

        ``meta`` is the eager metadata of the step (one token per sequence, tensors on the device).
        Raises ``ValueError`` for a step no captured graph can run; check :meth:`can_run` first.
        """
        n = input_ids.shape[0]
        bs = self.bucket_for(n)
        if bs is None or not self.can_run(meta):
            raise ValueError(f"no captured decode graph for this step ({n} sequences)")
        width = meta.block_tables.shape[1]
        self.input_ids[:n].copy_(input_ids)
        self.positions[:n].copy_(positions)
        self.slot_mapping[:n].copy_(meta.slot_mapping)
        self.slot_mapping[n:bs].fill_(-1)
        self.seq_lens[:n].copy_(meta.seq_lens)
        self.seq_lens[n:bs].zero_()
        self.block_tables[:n, :width].copy_(meta.block_tables)
        self.graphs[bs].replay()
        self.num_replays += 1
        return self.outputs[bs][:n]

    def can_run(self, meta: AttentionMetadata) -> bool:
        """True for a step of only decodes that fits a bucket and the static block-table width."""
        return (
            meta.num_seqs <= self.max_batch
            and all(n == 1 for n in meta.query_lens_list)
            and meta.max_seq_len <= self.max_model_len
            and meta.block_tables.shape[1] <= self.block_tables.shape[1]
        )

    def _static_meta(self, bs: int) -> AttentionMetadata:
        """Metadata over the static buffers; host lists describe the worst case (longest context)."""
        return AttentionMetadata(
            slot_mapping=self.slot_mapping[:bs],
            query_start_loc=self.query_start_loc[: bs + 1],
            seq_lens=self.seq_lens[:bs],
            block_tables=self.block_tables[:bs],
            query_start_loc_list=list(range(bs + 1)),
            query_lens_list=[1] * bs,
            seq_lens_list=[self.max_model_len] * bs,
            num_computed_list=[self.max_model_len - 1] * bs,
        )
