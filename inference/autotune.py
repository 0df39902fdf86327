"""Kernel choice by measurement: which weights serve prompt rows and generated rows, and with how many threads.

The fastest CPU path differs between machines (an AMX Xeon prefills bf16 5x faster than llama.cpp but
decodes bf16 at half its speed; an EPYC's best int4 kernel differs again), so on the first load of a model
on a CPU a short autotune times the model's own linear layers (a sample of its layers, a few seconds):
dense weights against packed int8 / int4 copies at decode row counts (1 row, a speculative verification,
the row count where dense wins again) and dense against our int8 x int8 GEMM at a prefill chunk, for each
thread count. The choice is cached in ``<cache root>/autotune.json`` under the CPU model, torch version and model shape; an entry
measured on another CPU or torch is never used. A kernel this torch build lacks, or that fails, is left out
with a log line; with none left the model runs dense.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from inference.compute_dtype import native_bf16
from inference.cpu_info import cpu_flags, cpu_model
from inference.models.hybrid_linear import BODY_MODULES, PACKED_KINDS, PROMPT_KINDS, PackedWeight, packable
from inference.tuning import CACHE_FILE, FORCE_ENV, cache_dir, median_ms, read_entries, write_entry

log = logging.getLogger(__name__)
DECODE_ROWS = (1, 4, 8, 16)
PREFILL_ROWS = 256
VERIFY_ROWS = 4
"""Rows of a typical speculative verification (the decode choice weighs 1 row and this many equally)."""
SAMPLE_LAYERS = 4
REPEATS = 3
BUDGET_S = 15.0
"""More thread counts are measured only while the autotune has run less than this long."""
COLLAPSE = 2.0
"""A thread count whose 1-row dense pass is this many times slower than one thread's is contended (its
threads wait for cores other work holds): the rest of its measurements are skipped. A packed kind this many times
slower than dense at one row is not timed at more rows (torch's int4 kernel on an AVX2 Zen 3: 7x slower at one row,
1.9 s for 16 rows; timing it spent the budget before a second thread count was measured)."""
Call = tuple[Callable[[torch.Tensor], torch.Tensor], int]
"""One layer's matmul and its input width."""


@dataclass(frozen=True)
class KernelPlan:
    """What serves each kind of row. ``decode`` "dense" means no packed copy is kept."""

    decode: str = "dense"
    """Weights of generated rows: "dense" or a packed kind ("int8", "int4", "int4x8", ...; packed, resident next to the dense ones)."""
    prefill: str = "dense"
    """Weights of prompt rows: "dense" (the model dtype) or a prompt kind ("int8x8"; packed, resident)."""
    packed_max_rows: int = 16
    """Most generated rows per step that take the packed path; above, the whole step runs dense."""
    decode_threads: int | None = None
    prefill_threads: int | None = None
    source: str = "config"
    """"config" (asked for), "autotune" (measured now), "cache" (measured before on this CPU), "fallback"."""
    table: dict = field(default_factory=dict)
    """Measured milliseconds per candidate ("int4@2t/M1": ...), empty unless measured."""

    def as_dict(self) -> dict:
        return asdict(self)

    def row_cost(self, rows: int) -> float | None:
        """Measured time of ``rows`` generated rows relative to one row (linear between measured row counts);
        None without a measured table."""
        kind, threads = self.decode, self.decode_threads
        if threads is None:  # a configured kind, measured at the thread count it was loaded with
            counts = {key.split("@")[1].split("t/")[0] for key in self.table if key.startswith(f"{kind}@")}
            threads = counts.pop() if len(counts) == 1 else None
        points = sorted((r, self.table[key]) for r in DECODE_ROWS
                        if (key := f"{kind}@{threads}t/M{r}") in self.table)
        if len(points) < 2 or rows < 1:
            return None
        base = points[0][1]
        for (r0, t0), (r1, t1) in zip(points, points[1:], strict=False):
            if rows <= r1:
                return (t0 + (t1 - t0) * (rows - r0) / (r1 - r0)) / base
        (r0, t0), (r1, t1) = points[-2], points[-1]
        return (t1 + (t1 - t0) * (rows - r1) / (r1 - r0)) / base


def cache_key(model_shape: str, dtype: torch.dtype = torch.float32) -> str:
    """Key of an autotune entry: CPU model, core count, torch version, the candidate kernels of each role that
    run here and model shape (a kernel added since an entry was measured, a kind newly allowed to decode, or our
    kernels turned off or unbuildable since make it another entry: a plan never names a kernel that cannot run)."""
    decode = [k for k in PACKED_KINDS if runs_here(k, dtype)]
    prompt = [k for k in PROMPT_KINDS if runs_here(k, dtype)]
    kinds = f"decode {'+'.join(decode)}|prompt {'+'.join(prompt)}"
    return f"{cpu_model()}|{os.cpu_count()}cpu|torch {torch.__version__}|{kinds}|{model_shape}"


def runs_here(kind: str, dtype: torch.dtype = torch.float32) -> bool:
    """Whether this torch (and our kernels, for theirs) packs and runs ``kind`` (a 64 x 64 layer, logged when not)."""
    return _pack_all([nn.Linear(64, 64, bias=False).to(dtype)], kind) is not None


def model_shape(model: nn.Module) -> str:
    cfg = model.config
    return f"{cfg.num_layers}x{cfg.hidden_size}x{cfg.intermediate_size}x{cfg.vocab_size}"


def kernel_plan(model: nn.Module, dtype: torch.dtype, cache_dir: Path, *, force: bool = False) -> KernelPlan:
    """The cached plan for this CPU + torch + model shape, or a fresh measurement (cached for next time)."""
    key = cache_key(model_shape(model), dtype)
    path = cache_dir / CACHE_FILE
    cached = read_entries(path).get(key)
    if cached and not force:
        try:
            return KernelPlan(**{**cached, "source": "cache"})
        except TypeError:
            log.info("autotune: ignoring an unreadable cache entry for %s", key)
    plan = measure(model, dtype)
    if plan.source == "autotune":
        write_entry(path, key, plan.as_dict())
    return plan


def measure(model: nn.Module, dtype: torch.dtype, thread_counts: list[int] | None = None) -> KernelPlan:
    """Time a sample of the model's linear layers under each candidate; the fastest wins (see module doc)."""
    _log_cpu_features()
    linears = _sample_linears(model)
    if not linears:
        return KernelPlan(source="fallback")
    threads_before = torch.get_num_threads()
    counts = thread_counts or sorted({1, *range(2, (os.cpu_count() or 1) + 1)})[:4]
    calls: dict[str, list[Call]] = {"dense": [(partial(F.linear, weight=lin.weight), lin.in_features)
                                              for lin in linears]}
    prompt_calls: dict[str, list[Call]] = {"dense": calls["dense"]}
    for kind in dict.fromkeys(PACKED_KINDS + PROMPT_KINDS):
        packed = _pack_all(linears, kind)
        if packed is not None:
            kind_calls = [(p.matmul, lin.in_features) for p, lin in zip(packed, linears, strict=True)]
            if kind in PACKED_KINDS:
                calls[kind] = kind_calls
            if kind in PROMPT_KINDS:
                prompt_calls[kind] = kind_calls
    table: dict[str, float] = {}
    started = time.perf_counter()
    try:
        for threads in counts:
            if threads != counts[0] and time.perf_counter() - started > BUDGET_S:
                break
            torch.set_num_threads(threads)
            first = table[f"dense@{threads}t/M1"] = _time(calls["dense"], 1, dtype)
            if threads != counts[0] and first > COLLAPSE * table[f"dense@{counts[0]}t/M1"]:
                log.info("autotune: %d threads contended (other work holds the cores); not measured further",
                         threads)
                continue
            for kind, kind_calls in calls.items():
                for rows in DECODE_ROWS:
                    key = f"{kind}@{threads}t/M{rows}"
                    table[key] = table.get(key) or _time(kind_calls, rows, dtype)
                    if rows == 1 and kind != "dense" and table[key] > COLLAPSE * first:
                        break  # slower than dense at one row: it cannot win; its larger row counts are skipped
            for kind, kind_calls in prompt_calls.items():
                table[f"{kind}@{threads}t/M{PREFILL_ROWS}"] = _time(kind_calls, PREFILL_ROWS, dtype)
    finally:
        torch.set_num_threads(threads_before)
    return choose(table, list(calls), counts, list(prompt_calls))


def measure_rows(model: nn.Module, kind: str, dtype: torch.dtype) -> dict[str, float]:
    """Times of 1, 4, 8 and 16 generated rows through a sample of the model's layers packed as ``kind``, at the
    current thread count (well under a second): how a configured kind's extra rows cost, which speculative
    decoding weighs its drafts with. Empty when ``kind`` does not run here."""
    linears = _sample_linears(model)
    packed = _pack_all(linears, kind) if linears else None
    if packed is None:
        return {}
    calls = [(p.matmul, lin.in_features) for p, lin in zip(packed, linears, strict=True)]
    threads = torch.get_num_threads()
    return {f"{kind}@{threads}t/M{rows}": _time(calls, rows, dtype) for rows in DECODE_ROWS}


def choose(table: dict[str, float], kinds: list[str], counts: list[int],
           prompt_kinds: list[str] = ("dense",)) -> KernelPlan:
    """The plan a measured ``table`` implies (pure; see ``measure`` for the keys)."""
    def best(kind: str, rows: int) -> tuple[float, int]:  # (inf, ...) where never measured
        return min(((table[key], t) for t in counts if (key := f"{kind}@{t}t/M{rows}") in table),
                   default=(float("inf"), counts[0]))

    decode_kind = min(kinds, key=lambda k: best(k, 1)[0] + best(k, VERIFY_ROWS)[0])
    decode_threads = best(decode_kind, 1)[1]
    max_rows = 0
    if decode_kind != "dense":
        for rows in DECODE_ROWS:
            if best(decode_kind, rows)[0] <= best("dense", rows)[0]:
                max_rows = rows
            else:
                break
    if decode_kind != "dense" and max_rows == 0:
        decode_kind = "dense"
    prefill_kind = min(prompt_kinds, key=lambda k: best(k, PREFILL_ROWS)[0])
    prefill_threads = best(prefill_kind, PREFILL_ROWS)[1]
    return KernelPlan(decode=decode_kind, prefill=prefill_kind, packed_max_rows=max(max_rows, 1),
                      decode_threads=decode_threads, prefill_threads=prefill_threads, source="autotune",
                      table=dict(table))


def _log_cpu_features() -> None:
    flags = cpu_flags()
    if not native_bf16():
        log.info("autotune: no AVX-512-BF16 / AMX on this CPU: bf16 GEMMs run without hardware bf16")
    if "avx512f" not in flags and "avx2" not in flags and platform.machine() in ("x86_64", "AMD64"):
        log.info("autotune: no AVX-512 / AVX2 on this CPU: packed kernels use their generic path")


def _sample_linears(model: nn.Module) -> list[nn.Linear]:
    layers = getattr(model, "layers", [])
    if not layers:
        return []
    step = max(len(layers) // SAMPLE_LAYERS, 1)
    out = []
    for layer in list(layers)[::step][:SAMPLE_LAYERS]:
        out.extend(m for n, m in layer.named_modules() if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1]
                   in BODY_MODULES)
    return out


def _pack_all(linears: list[nn.Linear], kind: str) -> list[PackedWeight] | None:
    """Packed copies of the sampled layers, or None (logged) when this torch cannot pack or run ``kind``."""
    try:
        packed = []
        for lin in linears:
            group = packable(lin, kind)
            if group is None:
                log.info("autotune: %s skipped, shape %s does not pack", kind, tuple(lin.weight.shape))
                return None
            packed.append(PackedWeight(lin.weight.detach(), kind, group or None))
        x = torch.zeros(1, linears[0].in_features, dtype=linears[0].weight.dtype)
        packed[0].matmul(x)
        return packed
    except (RuntimeError, AttributeError, NotImplementedError) as exc:
        log.info("autotune: %s packed kernel unavailable in this torch build (%s); skipping it", kind,
                 str(exc).splitlines()[0][:120])
        return None


@torch.inference_mode()
def _time(calls: list[Call], rows: int, dtype: torch.dtype, repeats: int = REPEATS) -> float:
    """Median milliseconds of one pass of ``rows`` rows through every sampled layer."""
    inputs = {n: torch.randn(rows, n, dtype=dtype) for _, n in calls}

    def one() -> None:
        for call, n in calls:
            call(inputs[n])

    return median_ms(one, repeats)


def plan_kernels(model: nn.Module, config, dtype: torch.dtype) -> KernelPlan:
    """The plan for ``config.weight_quant`` "hybrid_int8" / "hybrid_int4" / ... (as asked, if this torch can
    run it) or "auto" (measured or cached on CPU; dense elsewhere), with ``config.prefill_quant`` for prompt
    rows ("auto": the autotune's choice under weight_quant auto, else dense), timed in ``dtype``, the dtype the
    model computes in (the runner's: not its first parameter's, since a float32 model on a CPU without hardware
    bf16 keeps a 16-bit input embedding table). ``CODELOOP_AUTOTUNE=force`` re-measures."""
    prompt = getattr(config, "prefill_quant", "auto")
    if prompt not in ("auto", "dense") and not runs_here(prompt, dtype):
        log.info("kernels: prompt rows stay dense (%s unavailable here)", prompt)
        prompt = "dense"
    if config.weight_quant.startswith("hybrid_"):
        kind = config.weight_quant.removeprefix("hybrid_")
        if not runs_here(kind, dtype):
            return KernelPlan(source="fallback", prefill="dense" if prompt == "auto" else prompt)
        if prompt == "auto":  # a decode copy that is also a prompt kind serves the prompts too: no bf16 weights
            prompt = kind if kind in PROMPT_KINDS else "dense"
        speculating = config.speculative.method != "none"  # the row costs are for weighing drafts: only then
        return KernelPlan(decode=kind, prefill=prompt, source="config",
                          table=measure_rows(model, kind, dtype) if speculating else {})
    if not str(config.device).startswith("cpu"):
        return KernelPlan(source="config")
    plan = kernel_plan(model, dtype, cache_dir(), force=os.environ.get(FORCE_ENV) == "force")
    if prompt != "auto" and prompt != plan.prefill:
        plan = replace(plan, prefill=prompt, source=f"{plan.source}+config")
    log.info("kernels: generated rows %s (up to %d rows, %s threads), prompt rows %s (%s threads) [%s]",
             plan.decode, plan.packed_max_rows, plan.decode_threads, plan.prefill, plan.prefill_threads,
             plan.source)
    return plan
