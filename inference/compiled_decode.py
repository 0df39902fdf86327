"""Compiled decode steps on CPU: the model's own forward through ``torch.compile``, one graph per step.

A batch-1 decode step of the 0.5B is ~14 ms of packed int4 matmuls and ~11 ms of ~1,900 small eager ops
(RMSNorm, RoPE, K/V write and gather, SDPA, residual adds, module calls) at 2–10 µs each. Inductor fuses
the elementwise work into a few C++ kernels and leaves our packed matmuls and the generated rows' attention
(our paged kernel or SDPA, as the backend chose) in place; with
``emulate_precision_casts`` it rounds to the model dtype where eager rounds. Its fused RMSNorm reduction adds
in another order than ATen's kernel, so hidden states may differ from eager's by an ulp (0.0 on the tiny test
models, up to 0.625 on the 0.5B's bf16 hidden states) and a near-tie can flip a greedy token (1 of 16 FIM
completions in ``bench fim``). Within the compiled path a row gets the same numbers alone, batched or as a
draft under verification (the one-row and the 2+ row graphs agree bit for bit on the 0.5B), so speculation
still never changes an output (tested).

What is compiled is ``LlamaModel.forward`` itself, all layers in one graph with a C++ wrapper: one guard
check and one call per step (a graph per layer, shared by all layers, costs ~0.2 ms of guards and wrapper
per layer: measured 16% slower per step). It runs steps whose rows are all generated rows (decode steps,
draft verification) on the "sdpa" backend with no LoRA adapter in the step; anything else runs eagerly (so a
step shared with an adapter's request, or a repository adapter's every step, gets no gain, and eager numbers).
Two graphs: one row, and 2+ rows with the row count dynamic; the context length is dynamic in both (a
context of at least two KV blocks; shorter ones run eagerly, one graph fewer to compile). Both are compiled
at load by :meth:`warm_up`: ~2.5 min the first time on 2 cores of a Zen 4, ~15 s on later loads from
inductor's on-disk cache (kept under codeloop's cache dir). Where inductor cannot build (no C++ compiler,
an unsupported torch), the warm-up logs why and the runner decodes eagerly.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import torch
from torch import nn

from inference.attention.metadata import AttentionMetadata, LayerKVCache

log = logging.getLogger(__name__)
OFF_ENV = "CODELOOP_COMPILE_DECODE"
"""Set to "off" to keep compile_decode "auto" from compiling (the test suite's tiny engines do)."""


def _run_model(model: nn.Module, input_ids: torch.Tensor, positions: torch.Tensor,
               kv_caches: list[LayerKVCache], meta: AttentionMetadata) -> torch.Tensor:
    return model(input_ids, positions, kv_caches, meta)


def _first_line(exc: BaseException, default: str) -> str:
    return str(exc).splitlines()[0] if str(exc) else default


def _mark_dynamic(t: torch.Tensor, dims: tuple[int, ...]) -> None:
    for d in dims:
        torch._dynamo.mark_dynamic(t, d)


class CompiledDecode:
    """The compiled decode forward and when it may run. ``num_runs``: steps it ran (benchmarks, tests)."""

    def __init__(self, backend: object, block_size: int) -> None:
        if getattr(backend, "name", None) != "sdpa":
            raise ValueError(f"compiled decode runs the 'sdpa' backend, not {getattr(backend, 'name', backend)!r}")
        from inference.catalog import cache_root

        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))
        self.backend, self.block_size = backend, block_size
        self._forward = torch.compile(_run_model, dynamic=False,
                                      options={"emulate_precision_casts": True, "cpp_wrapper": True})
        self._compiled: set[str] = set()
        self.num_runs = 0
        self.misses = 0
        """Steps that would have needed a new graph after the warm-up and ran eagerly instead."""
        self.ready = False
        self.compile_s = 0.0
        """Seconds the warm-up spent compiling (0 before it ran)."""

    def can_run(self, meta: AttentionMetadata, lora: bool, max_rows: int) -> bool:
        """Whether this step takes the compiled graph: at most ``max_rows`` rows, all generated rows, no
        adapter, and a longest context of at least two KV blocks."""
        if lora or meta.query_start_loc_list[-1] > max_rows or max(meta.seq_lens_list) <= self.block_size:
            return False
        return not any(meta.prompt_rows(i) for i in range(meta.num_seqs))

    def run(self, model: nn.Module, input_ids: torch.Tensor, positions: torch.Tensor,
            kv_caches: list[LayerKVCache], meta: AttentionMetadata) -> torch.Tensor | None:
        """``model(input_ids, positions, kv_caches, meta)`` through the graph (the caller checked
        :meth:`can_run`); None when the step would need a new graph (nothing ran: run it eagerly)."""
        state = self.backend.prepare(meta, self.block_size)
        kind = "one" if input_ids.shape[0] == 1 else "rows"
        if kind not in self._compiled:  # this call compiles: mark what varies from step to step
            self._compiled.add(kind)
            rows = () if kind == "one" else (0,)
            for t in (input_ids, positions, meta.slot_mapping):
                _mark_dynamic(t, rows)
            _mark_dynamic(state["decode_tables"], (*rows, 1))
            _mark_dynamic(state["decode_lens"], rows)
            _mark_dynamic(state["decode_mask"], (*rows, 3))
            for cache in kv_caches:  # the pool's size: one compiled artifact whatever the KV budget
                for t in (cache.k, cache.v, cache.k_scale, cache.v_scale):
                    if t is not None:
                        _mark_dynamic(t, (0,))
        if not self.ready:  # the warm-up compiles
            self.num_runs += 1
            return self._forward(model, input_ids, positions, kv_caches, meta)
        from torch._dynamo.exc import RecompileError  # (not at import: loading a model never imports dynamo)

        try:  # never a compile in the middle of serving: a step the two graphs do not fit runs eagerly
            with torch.compiler.set_stance("fail_on_recompile"):
                hidden = self._forward(model, input_ids, positions, kv_caches, meta)
        except RecompileError as exc:
            if not self.misses:
                log.warning("a decode step did not fit the compiled graphs; it ran eagerly (%s)",
                        _first_line(exc, "recompile"))
            self.misses += 1
            return None
        self.num_runs += 1
        return hidden

    def warm_up(self, run_step: Callable[[int], None]) -> bool:
        """Compile both graphs by running ``run_step(num_rows)`` (a decode step of 1 and of 2 rows over
        scratch KV blocks). False, logged, when inductor cannot compile here: decode stays eager."""
        start = time.perf_counter()
        try:
            for rows in (1, 2):
                run_step(rows)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: decode eagerly
            log.warning("compiled decode unavailable (%s: %s); decoding eagerly", type(exc).__name__,
                        _first_line(exc, ""))
            return False
        self.compile_s = time.perf_counter() - start
        self.ready = True
        log.info("compiled decode ready in %.1f s", self.compile_s)
        return True
