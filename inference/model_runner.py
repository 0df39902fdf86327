"""ModelRunner: turns a StepBatch into flat tensors, runs the model over the paged KV cache, samples."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from inference.attention import AttentionMetadata, LayerKVCache, get_backend
from inference.autotune import KernelPlan, plan_kernels
from inference.batch import SampledToken, SeqChunk, StepBatch
from inference.catalog import resolve_model_path
from inference.compiled_decode import OFF_ENV, CompiledDecode
from inference.compute_dtype import resolve_kv_dtype, resolve_weight_quant, torch_dtype
from inference.config import EngineConfig
from inference.heap import release_free_heap
from inference.kv_cache.quant import SCALE_DTYPE
from inference.kv_memory import lazy_zeros
from inference.lora import LoraAdapter
from inference.lora_layers import FusedLora, LoraLayers, fuse, step_groups
from inference.models.hybrid_linear import RowSplit, make_hybrid, weight_memory
from inference.models.loader import LoadedModel, load_model, map_embedding_table
from inference.models.quant_linear import quantize_model
from inference.sampler import sample


class ModelRunner:
    """Owns the model, its tokenizer and the KV cache tensors of one device.

    Invariant: after ``allocate_kv(n)``, ``kv_caches`` holds one :class:`LayerKVCache` per layer with ``n``
    blocks of the layout in ``inference/attention/metadata.py``; ``execute`` never reallocates them.
    The weights are always exactly the base model's; a chunk with ``adapter_id`` gets that loaded adapter's
    LoRA deltas added to its tokens' projections (``inference/lora_layers.py``), other chunks none.
    """

    supports_adapters = True

    def __init__(self, config: EngineConfig, loaded: LoadedModel | None = None) -> None:
        """Load ``config.model``; or run ``loaded``, a model already built on ``config.device`` in
        ``config.dtype`` with ``config.attention_backend`` (the GPU benchmark's random weights in real shapes)."""
        self.config = config
        self.device = torch.device(config.device)
        self.dtype: torch.dtype = torch_dtype(config.dtype, config.device)
        self.kv_dtype: torch.dtype = getattr(torch, resolve_kv_dtype(config.cache.kv_cache_dtype, config.dtype,
                                                                     config.device))
        """K/V storage: int8 (with scales), the model dtype, or bf16 under a float32 "auto" on CPU."""
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.backend = get_backend(config.attention_backend)
        hybrid = config.weight_quant.startswith("hybrid_") or config.weight_quant == "auto"
        if loaded is None:
            loaded = load_model(
                resolve_model_path(config.model),
                backend=self.backend,
                dtype=self.dtype,
                device=config.device,
                max_positions=config.max_model_len,
                weight_quant="none" if hybrid else resolve_weight_quant(config.weight_quant, config.dtype,
                                                                        config.device),
            )
        self.model, self.model_config, self.tokenizer = loaded.model, loaded.config, loaded.tokenizer
        self.kernels = plan_kernels(self.model, config, self.dtype) if hybrid else KernelPlan(source="config")
        """Which weights serve prompt rows and generated rows (``inference/autotune.py``)."""
        self._row_split: RowSplit | None = None
        if self.kernels.decode != "dense" or self.kernels.prefill != "dense":
            self._row_split = make_hybrid(self.model, self.kernels.decode, self.kernels.packed_max_rows,
                                          self.kernels.prefill)
            map_embedding_table(self.model, loaded.source)  # a tied table the lm_head left: rows on demand
        elif hybrid and (stored := resolve_weight_quant("none", config.dtype, config.device)) != "none":
            quantize_model(self.model, stored)  # dense after all: stored as weight_quant "none" stores them
        release_free_heap()  # what loading and packing freed between the weights that stay
        if hasattr(self.backend, "choose_prompt_kernel"):  # by measurement on CPU (attention/cpu_prompt.py)
            mc = self.model_config
            self.backend.choose_prompt_kernel(mc.num_heads, mc.num_kv_heads, mc.head_dim, self.dtype, self.device,
                                              config.prompt_attention, generated_rows=not self._wants_compiled())
        if hasattr(self.backend, "choose_decode_kernel"):  # by measurement on CPU (attention/cpu_decode.py)
            mc = self.model_config
            self.backend.choose_decode_kernel(mc.num_heads, mc.num_kv_heads, mc.head_dim, self.dtype, self.kv_dtype,
                                              self.device, config.decode_attention)
        self.eos_token_ids: set[int] = loaded.eos_token_ids
        self.max_model_len = config.max_model_len or self.model_config.max_position_embeddings
        self.block_size = config.cache.block_size
        self.kv_caches: list[LayerKVCache] = []
        self._rng = torch.Generator(device="cpu").manual_seed(config.seed)
        self._adapters: dict[str, dict[str, FusedLora]] = {}
        self._lora: LoraLayers | None = None
        self.graphs = None
        """DecodeCudaGraphs when decode steps replay captured CUDA graphs (CUDA + triton backend)."""
        self.compiled: CompiledDecode | None = None
        """The compiled forward of CPU decode steps, once :meth:`allocate_kv` has warmed it up."""

    def fuse_adapter(self, adapter: LoraAdapter) -> dict[str, FusedLora]:
        """``adapter`` laid out for this model's fused modules (AdapterError if it does not fit)."""
        return fuse(adapter, self.model_config, self.device)

    def add_adapter(self, adapter_id: str, adapter: LoraAdapter) -> None:
        """Make ``adapter`` available to chunks with this ``adapter_id`` (AdapterError if it does not fit)."""
        fused = self.fuse_adapter(adapter)
        if self._lora is None:
            self._lora = LoraLayers(self.model)
        self._adapters[adapter_id] = fused

    def remove_adapter(self, adapter_id: str) -> None:
        self._adapters.pop(adapter_id, None)

    @property
    def adapter_keys(self) -> set[str]:
        return set(self._adapters)

    @property
    def kv_quantized(self) -> bool:
        return self.config.cache.kv_cache_dtype == "int8"

    def bytes_per_block(self) -> int:
        """Bytes of one KV block over all layers: K and V (+ their scales with int8)."""
        cfg = self.model_config
        elems = self.block_size * cfg.num_kv_heads
        if self.kv_quantized:
            per_layer = 2 * elems * cfg.head_dim + 2 * elems * SCALE_DTYPE.itemsize
        else:
            per_layer = 2 * elems * cfg.head_dim * self.kv_dtype.itemsize
        return per_layer * cfg.num_layers

    def allocate_kv(self, num_blocks: int) -> None:
        """(Re)allocate ``num_blocks`` zeroed KV blocks per layer (on CPU committed as first written)."""
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        cfg = self.model_config
        shape = (num_blocks, self.block_size, cfg.num_kv_heads, cfg.head_dim)
        data_dtype = self.kv_dtype
        zeros = functools.partial(lazy_zeros, device=self.device)
        self.kv_caches = []
        for _ in range(cfg.num_layers):
            scales = [zeros(shape[:3], SCALE_DTYPE) for _ in range(2)] if self.kv_quantized else [None, None]
            self.kv_caches.append(LayerKVCache(zeros(shape, data_dtype), zeros(shape, data_dtype), *scales))
        self.graphs = self._capture_graphs()
        if self.compiled is None and self._wants_compiled() and num_blocks >= 2:
            compiled = CompiledDecode(self.backend, self.block_size)
            self.compiled = compiled  # the warm-up's steps run through it
            if not compiled.warm_up(self._scratch_decode):
                self.compiled = None

    def _wants_compiled(self) -> bool:
        mode, cfg = self.config.compile_decode, self.config
        if mode == "off" or self.device.type != "cpu" or cfg.attention_backend != "sdpa":
            return False
        if mode == "auto" and os.environ.get(OFF_ENV) == "off":
            return False
        return mode == "on" or self.kernels.decode != "dense"

    def _scratch_decode(self, num_rows: int) -> None:
        """A decode step of ``num_rows`` rows writing K/V into blocks 0 and 1 (free at allocation)."""
        bs = self.block_size
        self.execute(StepBatch(chunks=[SeqChunk(-1 - i, [0], bs + i, [0, 1], False) for i in range(num_rows)]))

    def _capture_graphs(self):
        """Decode CUDA graphs per batch-size bucket; None off CUDA, with another backend, or when disabled."""
        cfg = self.config
        if not (self.device.type == "cuda" and cfg.enable_cuda_graphs and cfg.attention_backend == "triton"):
            return None
        from inference.cuda_graphs import DecodeCudaGraphs

        graphs = DecodeCudaGraphs(self.model, self.kv_caches, cfg.max_num_seqs, self.max_model_len)
        graphs.capture()
        return graphs

    @property
    def num_blocks(self) -> int:
        return self.kv_caches[0].k.shape[0] if self.kv_caches else 0

    @torch.inference_mode()
    def forward_logits(self, batch: StepBatch) -> torch.Tensor:
        """fp32 logits ``[num_tokens, vocab]`` of every new token of ``batch`` (tests and scoring; no sampling)."""
        self._apply_copies(batch)
        for chunk in batch.chunks:
            self._validate(chunk, sampling=False)
        input_ids, positions, meta = self.prepare_inputs(batch.chunks)
        with self._lora_step(batch.chunks), self._step_kernels(meta):
            return self.model.compute_logits(self.model(input_ids, positions, self.kv_caches, meta))

    @torch.inference_mode()
    def execute(self, batch: StepBatch, check: Callable[[], None] | None = None) -> list[SampledToken]:
        """Run one step: block copies, forward over all chunks, one sample per chunk with ``sample=True``.
        ``check`` runs between the layers of an eager forward and may raise to end the step early."""
        self._apply_copies(batch)
        if not batch.chunks:
            return []
        for chunk in batch.chunks:
            self._validate(chunk)
        input_ids, positions, meta = self.prepare_inputs(batch.chunks)
        sampling = [c for c in batch.chunks if c.sample]
        ends = meta.query_start_loc_list
        rows = [r for i, c in enumerate(batch.chunks) if c.sample
                for r in range(ends[i + 1] - 1 - c.num_draft_tokens, ends[i + 1])]  # drafts: one row each
        with self._lora_step(batch.chunks) as lora, self._step_kernels(meta):
            if self.graphs is not None and not lora and self.graphs.can_run(meta):
                hidden = self.graphs.run(input_ids, positions, meta)  # [num_tokens, hidden]
            else:
                hidden = self._forward(input_ids, positions, meta, lora, check)  # [num_tokens, hidden]
            if not sampling:
                return []
            logits = self.model.compute_logits(hidden[torch.tensor(rows, device=self.device)])  # [n, vocab]
        return sample(logits.cpu(), sampling, self._rng)

    def _forward(self, input_ids: torch.Tensor, positions: torch.Tensor, meta: AttentionMetadata,
                 lora: bool, check: Callable[[], None] | None = None) -> torch.Tensor:
        """The model's hidden states: through the compiled decode graph when this step can take it (a
        decode step is short: ``check`` serves the eager forward only)."""
        c = self.compiled
        if c is not None and c.can_run(meta, lora, self.kernels.packed_max_rows):
            hidden = c.run(self.model, input_ids, positions, self.kv_caches, meta)
            if hidden is not None:
                return hidden
        return self.model(input_ids, positions, self.kv_caches, meta, check)

    @contextmanager
    def _lora_step(self, chunks: list[SeqChunk]) -> Iterator[bool]:
        """Set the LoRA groups of this step's chunks for the forward inside; yields whether any adapter runs."""
        if self._lora is None or all(c.adapter_id is None for c in chunks):
            yield False
            return
        self._lora.groups = step_groups([c.adapter_id for c in chunks], [len(c.token_ids) for c in chunks],
                                        self._adapters, self.device)
        try:
            yield True
        finally:
            self._lora.groups = ()

    @contextmanager
    def _step_kernels(self, meta: AttentionMetadata) -> Iterator[None]:
        """Route this step's generated rows to the packed weights and set the step kind's thread count."""
        plan = self.kernels
        generated = [r >= meta.prompt_rows(i) for i, n in enumerate(meta.query_lens_list) for r in range(n)]
        threads = plan.decode_threads if all(generated) else plan.prefill_threads
        if threads and not self.config.num_threads and threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        if self._row_split is None:
            yield
            return
        self._row_split.set_rows(generated)
        try:
            yield
        finally:
            self._row_split.clear()

    def kernel_report(self) -> dict:
        """Which paths serve prompt and generated rows, how they were chosen, and the weights' memory."""
        c = self.compiled
        compiled = None if c is None else {"compile_s": round(c.compile_s, 1), "steps": c.num_runs,
                                           "eager_misses": c.misses}
        return {**self.kernels.as_dict(), "weight_memory": weight_memory(self.model),
                "prompt_attention": getattr(self.backend, "prompt_kernel", self.backend.name),
                "generated_attention": "native" if getattr(self.backend, "generated_native", False)
                else getattr(self.backend, "decode_kernel", self.backend.name),
                "threads_now": torch.get_num_threads(), "compiled_decode": compiled}

    def _apply_copies(self, batch: StepBatch) -> None:
        if not self.kv_caches:
            raise RuntimeError("allocate_kv() must be called before running the model")
        for copy in batch.copies:
            self._check_block(copy.src)
            self._check_block(copy.dst)
            for cache in self.kv_caches:
                cache.copy_block(copy.src, copy.dst)

    def prepare_inputs(self, chunks: list[SeqChunk]) -> tuple[torch.Tensor, torch.Tensor, AttentionMetadata]:
        """Flat ``input_ids``, ``positions`` ``[num_tokens]`` and the attention metadata of ``chunks``."""
        bs = self.block_size
        input_ids: list[int] = []
        positions: list[int] = []
        slots: list[int] = []
        starts, seq_lens = [0], []
        for c in chunks:
            end = c.num_computed_tokens + len(c.token_ids)
            input_ids.extend(c.token_ids)
            pos = range(c.num_computed_tokens, end)
            positions.extend(pos)
            table = c.block_table
            slots.extend(table[p // bs] * bs + p % bs for p in pos)
            starts.append(starts[-1] + len(c.token_ids))
            seq_lens.append(end)
        width = max(len(c.block_table) for c in chunks)
        tables = [c.block_table + [0] * (width - len(c.block_table)) for c in chunks]
        dev = self.device
        meta = AttentionMetadata(
            slot_mapping=torch.tensor(slots, dtype=torch.int64, device=dev),
            query_start_loc=torch.tensor(starts, dtype=torch.int32, device=dev),
            seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=dev),
            block_tables=torch.tensor(tables, dtype=torch.int32, device=dev),
            query_start_loc_list=starts,
            query_lens_list=[len(c.token_ids) for c in chunks],
            seq_lens_list=seq_lens,
            num_computed_list=[c.num_computed_tokens for c in chunks],
            num_prompt_rows_list=[c.num_prompt_rows for c in chunks],
        )
        ids = torch.tensor(input_ids, dtype=torch.int64, device=dev)
        return ids, torch.tensor(positions, dtype=torch.int64, device=dev), meta

    def _validate(self, c: SeqChunk, sampling: bool = True) -> None:
        end = c.num_computed_tokens + len(c.token_ids)
        if not c.token_ids:
            raise ValueError(f"seq {c.seq_id}: chunk has no tokens")
        if end > self.max_model_len:
            raise ValueError(f"seq {c.seq_id}: {end} tokens exceed max_model_len {self.max_model_len}")
        if len(c.block_table) * self.block_size < end:
            raise ValueError(f"seq {c.seq_id}: block table of {len(c.block_table)} blocks cannot hold {end} tokens")
        for b in c.block_table[: -(-end // self.block_size)]:
            self._check_block(b)
        vocab = self.model_config.vocab_size
        if min(c.token_ids) < 0 or max(c.token_ids) >= vocab:
            raise ValueError(f"seq {c.seq_id}: token id out of range [0, {vocab})")
        if sampling and c.sample and c.params is None:
            raise ValueError(f"seq {c.seq_id}: sample=True needs params")

    def _check_block(self, block_id: int) -> None:
        if not 0 <= block_id < self.num_blocks:
            raise ValueError(f"block id {block_id} out of range [0, {self.num_blocks})")
