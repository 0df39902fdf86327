"""Our own CPU kernels: C++ built on first use with the machine's compiler, registered as ``torch.ops.codeloop``.

``int4x8_mm`` (``int4x8.cpp``): int4 weights times int8-quantized activations, the decode GEMV
of packed int4 weights. ``int8x8_mm`` (``int8x8.cpp``): int8 weights (per output channel) times int8-quantized
activations, the prefill GEMM: one VNNI instruction does 64 multiply-adds where a bf16 dot product does 32, so
on a CPU without AMX a prompt runs ~1.3-1.6x faster than through bf16 weights. torch's
``_weight_int4pack_mm_for_cpu`` widens every weight to float and runs ~19 G weights/s on a Zen 4 core pair; integer dot products (16 rows x 4 channels per instruction, as llama.cpp's
Q4 x Q8 kernels) reach the memory bandwidth. Activations are quantized per block of 32 channels (amax / 127;
amax / 63 in ``int8x8_mm`` on plain AVX2, see ``int8x8_activation_max``), each row on its own: a row gets the
same result alone, in a batch or as a draft under verification.

Both are written once in ``simd16.h``'s 16-lane operations: one AVX-512 VNNI register, or on an AVX2 CPU (Zen 1-3,
Intel before Ice Lake, Intel's AVX-512-less client cores) two AVX2 registers with VPMADDUBSW dot products, or
AVX-VNNI's 256-bit VPDPBUSD where the CPU has it (Alder Lake on). A machine runs only its CPU's branch;
``scripts/emulated_isa.py`` runs the kernels' tests under the others (SIMDe emulating the missing instructions).
On a Zen 3 pair of cores the AVX2 build decodes the 0.5B 2.5x faster than fbgemm's fp16 weights (torch's int4
kernel widens every weight to float) and prefills int8 x int8 ~1.4x faster than float32 (``docs/BENCHMARKS.md``,
"An AVX2 CPU").

``paged_decode_attention`` (``paged_attention.cpp``): generated rows' attention read in place from the paged KV
cache (float, bf16, fp16 or int8 blocks), in 8-lane AVX2 float arithmetic that every CPU the library builds on
runs; 3-8x torch's gather + SDPA for a decode row (``inference/attention/cpu_decode.py`` measures the choice).

The library (all sources) is compiled once per source, torch version, compiler and CPU (``-march=native``)
into ``<cache root>/kernels/`` (~15 s) and loaded with ``torch.ops.load_library``; a fake (meta) implementation lets
``torch.compile`` trace through it. A CPU with neither AVX-512 VNNI nor AVX2 (+FMA, F16C), no compiler, or a failed
build: ``available()`` is False with a log line, and callers keep torch's kernels. ``CODELOOP_NATIVE_KERNELS=off``
turns it off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import torch

from inference.cpu_info import cpu_flags, cpu_model

log = logging.getLogger(__name__)
SOURCES = tuple(Path(__file__).with_name(f) for f in ("int4x8.cpp", "int8x8.cpp", "attention.cpp", "paged_attention.cpp"))
HEADERS = tuple(Path(__file__).with_name(f) for f in ("q8_block.h", "simd16.h"))
ISAS = {"avx512_vnni": frozenset({"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}),
        "avx_vnni": frozenset({"avx2", "fma", "f16c", "avx_vnni"}),
        "avx2": frozenset({"avx2", "fma", "f16c"})}
"""The instruction sets ``simd16.h`` is written for, the preferred first, with the CPU flags each needs."""
ATTENTION_FLAGS = frozenset({"avx512_bf16"})
"""What ``causal_attention`` needs beyond the library's own flags (its functions alone are built for it)."""
OFF_ENV = "CODELOOP_NATIVE_KERNELS"
TILE = 16
"""Output rows per packed tile (one VNNI lane each)."""
BLOCK = 32
"""Input channels per activation quantization block (and the smallest weight group)."""
CXXFLAGS = ("-O3", "-march=native", "-std=c++20", "-fPIC", "-shared", "-fopenmp", "-w")
_loaded: bool | None = None


def available() -> bool:
    """Whether ``torch.ops.codeloop.int4x8_mm`` and ``int8x8_mm`` can run here (built and loaded on the first
    call)."""
    global _loaded
    if _loaded is None:
        _loaded = _load()
    return _loaded


def packs(out_features: int, in_features: int, group_size: int) -> bool:
    """Whether a weight ``[out_features, in_features]`` with int4 groups of ``group_size`` packs for the kernel."""
    return out_features % TILE == 0 and group_size % BLOCK == 0 and in_features % group_size == 0


def pack_int4x8(q: torch.Tensor, scales_and_zeros: torch.Tensor, group_size: int) -> torch.Tensor:
    """``quantize_int4``'s ``(q [N, K] in 0..15, scales_and_zeros [K/G, N, 2])`` in the kernel's layout: uint8
    ``[N/16, K/G * (64 + 8G)]``, per tile of 16 rows and group: 16 bf16 scales, 16 bf16 zeros, then the
    group's nibbles (see ``int4x8.cpp``)."""
    n, k = q.shape
    if not packs(n, k, group_size):
        raise ValueError(f"weight [{n}, {k}] does not pack for int4x8 with group size {group_size}")
    tiles, blocks, groups = n // TILE, k // BLOCK, k // group_size
    # channel = block*32 + half*16 + chunk*4 + byte; lane = row within the tile
    v = q.to(torch.uint8).view(tiles, TILE, blocks, 2, 4, 4).permute(0, 2, 4, 1, 5, 3)
    nibbles = (v[..., 0] | (v[..., 1] << 4)).contiguous().view(tiles, groups, group_size * TILE // 2)
    sz = scales_and_zeros.transpose(0, 1).reshape(tiles, TILE, groups, 2).permute(0, 2, 3, 1)
    sz_bytes = sz.contiguous().to(torch.bfloat16).view(torch.uint8).reshape(tiles, groups, 4 * TILE)
    return torch.cat([sz_bytes, nibbles], dim=2).view(tiles, -1).contiguous()


def int4x8_mm(x: torch.Tensor, weights: torch.Tensor, group_size: int) -> torch.Tensor:
    """``x [M, K] @ W.T`` in ``x``'s dtype for a weight packed by :func:`pack_int4x8`."""
    return torch.ops.codeloop.int4x8_mm(x, weights, group_size)


def packs_int8(out_features: int, in_features: int) -> bool:
    """Whether a weight ``[out_features, in_features]`` packs for ``int8x8_mm``."""
    return out_features % TILE == 0 and in_features % BLOCK == 0


def pack_int8x8(q: torch.Tensor) -> torch.Tensor:
    """``quantize_int8``'s ``q`` (int8 ``[N, K]``) in the kernel's layout: uint8 ``[N/16, K*16]``, per tile of 16
    rows and block of 32 channels 8 chunks of 64 bytes, byte (lane r, b) of chunk c = channel 4c+b of row r,
    stored as q + 128 (see ``int8x8.cpp``)."""
    n, k = q.shape
    if not packs_int8(n, k):
        raise ValueError(f"weight [{n}, {k}] does not pack for int8x8")
    biased = (q.to(torch.int16) + 128).to(torch.uint8)
    return biased.view(n // TILE, TILE, k // BLOCK, 8, 4).permute(0, 2, 3, 1, 4).contiguous().view(n // TILE, -1)


def int8x8_mm(x: torch.Tensor, weights: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x [M, K] @ W.T`` in ``x``'s dtype for a weight packed by :func:`pack_int8x8` with its float32
    per-channel ``scale [N]``."""
    return torch.ops.codeloop.int8x8_mm(x, weights, scale)


def int8x8_activation_max() -> int:
    """The range ``int8x8_mm`` quantizes activations to, ``[-n, n]``: 127 where the CPU has VNNI; 63 on plain AVX2,
    whose VPMADDUBSW would saturate multiplying the stored weight bytes (0..255) by 8-bit activations."""
    return int(torch.ops.codeloop.int8x8_activation_max())


def attention_available() -> bool:
    """Whether ``torch.ops.codeloop.causal_attention`` can run here (the library, and AVX-512 BF16)."""
    return available() and ATTENTION_FLAGS <= cpu_flags()


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Causal attention of bf16 ``q [n, H, d]`` over ``k``, ``v`` ``[L, KV, d]`` (``L >= n``; query ``i`` sees
    keys ``0 .. L - n + i``) as ``[n, H, d]`` (see ``attention.cpp``)."""
    return torch.ops.codeloop.causal_attention(q, k, v, scale)


def paged_decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_scale: torch.Tensor | None,
                           v_scale: torch.Tensor | None, tables: torch.Tensor, lens: torch.Tensor,
                           scale: float) -> torch.Tensor:
    """Attention of one query per row ``q [R, H, d]`` over its first ``lens[r]`` keys in a paged cache ``k``, ``v``
    ``[blocks, block_size, KV, d]`` (int8 with ``k_scale``, ``v_scale`` ``[blocks, block_size, KV]``), the row's
    blocks ``tables [R, >= ceil(lens / block_size)]`` (see ``paged_attention.cpp``)."""
    return torch.ops.codeloop.paged_decode_attention(q, k, v, k_scale, v_scale, tables, lens, scale)


def switched_off() -> bool:
    """``CODELOOP_NATIVE_KERNELS=off`` (or 0 / false)."""
    return os.environ.get(OFF_ENV, "").lower() in ("off", "0", "false")


def isa() -> str | None:
    """The instruction set the library is built for on this CPU (a key of ``ISAS``), None where none runs."""
    flags = cpu_flags()
    return next((name for name, needs in ISAS.items() if needs <= flags), None)


def missing_flags() -> frozenset[str]:
    """The CPU features the library needs that this CPU lacks (empty: it can be built here): those of the
    least demanding instruction set."""
    return frozenset() if isa() else ISAS["avx2"] - cpu_flags()


def _load() -> bool:
    if switched_off():
        return False
    missing = missing_flags()
    if missing:
        log.info("native kernels: this CPU lacks %s (and AVX-512 VNNI); int4 decode keeps torch's kernel",
                 ", ".join(sorted(missing)))
        return False
    if _registered():  # loaded earlier in this process
        return True
    try:
        library = _build()
        torch.ops.load_library(str(library))
        _register_fake()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.warning("native kernels: unavailable (%s); int4 decode keeps torch's kernel",
                    (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300])
        return False
    return True


def _registered() -> bool:
    try:
        torch.ops.codeloop.int4x8_mm, torch.ops.codeloop.int8x8_mm, torch.ops.codeloop.causal_attention  # noqa: B018
        torch.ops.codeloop.paged_decode_attention  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True


def _compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        raise OSError("no C++ compiler (c++, g++ or clang++) on PATH")
    return cxx


def _abi() -> str:
    return f"-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}"


def library_path(extra_flags: Sequence[str] = ()) -> Path:
    """Where the library for these sources, torch, compiler, CPU and ``extra_flags`` is (or will be) built;
    OSError without a compiler. Builds nothing."""
    from inference.catalog import cache_root

    texts = [src.read_text() for src in SOURCES + HEADERS]
    key = hashlib.sha256("\0".join([*texts, torch.__version__, _compiler(), _abi(), *CXXFLAGS, *extra_flags,
                                    cpu_model(), " ".join(sorted(cpu_flags()))]).encode()).hexdigest()[:16]
    return cache_root() / "kernels" / f"codeloop-{key}.so"


def _build(extra_flags: Sequence[str] = ()) -> Path:
    """The compiled library for this source, torch, compiler and CPU (built now if absent). ``extra_flags`` go to
    every compile after ours (``scripts/emulated_isa.py`` builds for an instruction set the CPU lacks so)."""
    from torch.utils.cpp_extension import include_paths, library_paths

    out = library_path(extra_flags)
    if out.exists():
        return out
    cxx, abi = _compiler(), _abi()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    objects = [tmp.with_name(f"{tmp.name}.{src.stem}.o") for src in SOURCES]
    includes = [*(f"-I{p}" for p in include_paths()), f"-I{sysconfig.get_paths()['include']}"]
    log.info("native kernels: building %s (once per torch and CPU)", out.name)
    try:  # one compiler per source at once (~2x faster on 2 cores), then one link
        _run_all([[cxx, *CXXFLAGS, abi, *includes, *extra_flags, "-c", str(src), "-o", str(obj)]
                  for src, obj in zip(SOURCES, objects, strict=True)], cxx)
        _run_all([[cxx, *CXXFLAGS, *map(str, objects), "-o", str(tmp), *(f"-L{p}" for p in library_paths()),
                   "-ltorch", "-ltorch_cpu", "-lc10"]], cxx)
        os.replace(tmp, out)  # atomic: a concurrent build of the same key writes the same bytes
    finally:
        for path in (tmp, *objects):
            path.unlink(missing_ok=True)
    return out


def _run_all(commands: list[list[str]], cxx: str) -> None:
    """Run the compiler commands side by side; RuntimeError with the first failure's message."""
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for cmd in commands]
    errors = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode:
            errors.append(err.strip()[-300:] or f"exit {proc.returncode}")
    if errors:
        raise RuntimeError(f"{Path(cxx).name} failed: {errors[0]}")


def _register_fake() -> None:
    @torch.library.register_fake("codeloop::int4x8_mm")
    def _(x: torch.Tensor, weights: torch.Tensor, group_size: int) -> torch.Tensor:
        return x.new_empty(x.shape[0], weights.shape[0] * TILE)

    @torch.library.register_fake("codeloop::causal_attention")
    def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        return torch.empty_like(q, memory_format=torch.contiguous_format)

    @torch.library.register_fake("codeloop::paged_decode_attention")
    def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_scale: torch.Tensor | None,
          v_scale: torch.Tensor | None, tables: torch.Tensor, lens: torch.Tensor, scale: float) -> torch.Tensor:
        return q.new_empty(q.shape)

    @torch.library.register_fake("codeloop::int8x8_mm")
    def _(x: torch.Tensor, weights: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return x.new_empty(x.shape[0], weights.shape[0] * TILE)
