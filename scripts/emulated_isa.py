"""The kernels' tests on an instruction set this CPU lacks: AVX-512 VNNI (+ BF16) or AVX-VNNI emulated on AVX2.

``inference/kernels`` is one source per kernel with a branch per instruction set (``simd16.h``), and a session
only ever runs the branch of the CPU it was given. This builds the library with SIMDe (header-only,
https://github.com/simd-everywhere/simde) standing in for the missing instructions under their own names, tells
the library's Python side that the CPU has those flags, and runs the tests that use the kernels against it:

    python scripts/emulated_isa.py --simde DIR [--isa avx512_vnni|avx512_bf16|avx_vnni] [options] [test paths]

``DIR`` holds ``simde/x86/avx512.h`` (a checkout of SIMDe; default ``$SIMDE_DIR``); without test paths, the test
files that run the kernels (``TESTS``). Exit status: pytest's. It checks the arithmetic and the layouts of the
other branches, not their speed. ``avx512_bf16`` adds the AVX-512 BF16 prompt attention (``attention.cpp``) to
AVX-512 VNNI, as on a Zen 4 or a Sapphire Rapids.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ("test_int8x8_kernel.py", "test_int4x8_kernel.py", "test_hybrid_linear.py", "test_paged_attention.py",
         "test_cpu_attention.py", "test_speculative_tiny.py", "test_compiled_decode.py", "test_autotune.py",
         "test_loader.py")
"""Under tests/inference: every test file that runs the kernels."""
AVX512_FAMILIES = ("F", "BW", "VL", "VNNI", "DQ", "CD", "BF16", "FP16", "VBMI", "VBMI2", "BITALG", "VPOPCNTDQ",
                   "VP2INTERSECT", "_4VNNIW")
ISAS = {
    "avx512_vnni": ("avx512_vnni", False),  # Ice Lake, Cascade Lake
    "avx512_bf16": ("avx512_vnni", True),  # Zen 4, Sapphire Rapids
    "avx_vnni": ("avx_vnni", False),  # Alder Lake and later client cores
}
"""Per emulated CPU: the library's instruction set there (a key of ``kernels.ISAS``, whose flags it reports) and
whether it also reports the bf16 attention's (``kernels.ATTENTION_FLAGS``)."""
MACROS = {"avx512_vnni": ("__AVX512F__", "__AVX512BW__", "__AVX512VL__", "__AVX512VNNI__"), "avx_vnni": ("__AVXVNNI__",)}
"""Per instruction set of the library: the compiler macros ``simd16.h`` branches on."""
STAND_INS = """\
#define _mm256_dpbusd_avx_epi32(a, b, c) simde_mm256_dpbusd_epi32(a, b, c)
// VCVTNE2PS2BF16, which SIMDe lacks: round to nearest even, NaNs quieted, denormal inputs as zero; b fills the
// low half
static inline simde__m512bh codeloop_cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
  const simde__m512_private ap = simde__m512_to_private(a), bp = simde__m512_to_private(b);
  uint16_t out[32];
  for (int i = 0; i < 32; ++i) {
    const float f = i < 16 ? bp.f32[i] : ap.f32[i - 16];
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) out[i] = (uint16_t)((u >> 16) | 0x40u);
    else if ((u & 0x7f800000u) == 0) out[i] = (uint16_t)((u >> 16) & 0x8000u);
    else out[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  simde__m512bh r;
  memcpy(&r, out, sizeof r);
  return r;
}
#define _mm512_cvtne2ps_pbh(a, b) codeloop_cvtne2ps_pbh(a, b)
"""
"""Instructions SIMDe names otherwise (AVX-VNNI's VPDPBUSD) or lacks (AVX-512 BF16's float to bf16 pair)."""
COMPILER_FLAGS = ("-fno-tree-sra",)
"""g++ 12 fails inside its SRA pass on SIMDe's 512-bit unions at -O3."""


def shim(library: str) -> str:
    """A header included before every source: the compiler's intrinsics, then the macros of the ``library``
    instruction set, then SIMDe's portable versions of the instructions under their native names (SIMDe must not
    take them for native; the bf16 attention's functions lose their target attribute, ``CL_BF16``)."""
    return "\n".join([
        f"// codeloop: {library} emulated through SIMDe (scripts/emulated_isa.py)",
        "#pragma once",
        "#include <immintrin.h>",
        "#include <string.h>",
        *(f"#define {macro} 1" for macro in MACROS[library]),
        *(f"#define SIMDE_X86_AVX512{family}_NO_NATIVE" for family in AVX512_FAMILIES),
        "#define SIMDE_ENABLE_NATIVE_ALIASES",
        "#define CL_BF16",
        "#include <simde/x86/avx512.h>",
        STAND_INS,
    ])


def emulate(isa: str, simde: Path) -> Path:
    """Build and load the library for ``isa`` and make ``inference.cpu_info`` report its flags; the library's
    path."""
    import torch

    import inference.cpu_info as cpu_info
    from inference import kernels
    from inference.catalog import cache_root

    real = cpu_info.read_cpuinfo
    library, bf16 = ISAS[isa]
    flags = sorted(kernels.ISAS[library] | (kernels.ATTENTION_FLAGS if bf16 else frozenset()))

    def read_cpuinfo() -> str:
        lines = []
        for line in real().splitlines():
            if line.startswith("flags"):
                line = " ".join([line, *flags])
            elif line.startswith("model name"):
                line = f"{line} (emulated {isa})"
            lines.append(line)
        return "\n".join(lines)

    cpu_info.read_cpuinfo = read_cpuinfo
    header = cache_root() / "kernels" / "emulated" / f"{library}.h"
    header.parent.mkdir(parents=True, exist_ok=True)
    if not header.exists() or header.read_text() != shim(library):
        header.write_text(shim(library))
    path = kernels._build((*COMPILER_FLAGS, f"-I{simde}", "-include", str(header)))
    torch.ops.load_library(str(path))
    kernels._register_fake()
    assert kernels.available() and kernels.isa() == library, (kernels.available(), kernels.isa())
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simde", type=Path, default=os.environ.get("SIMDE_DIR"),
                        help="folder holding simde/x86/avx512.h (default $SIMDE_DIR)")
    parser.add_argument("--isa", choices=sorted(ISAS), default="avx512_vnni")
    args, pytest_args = parser.parse_known_args(argv)
    if args.simde is None or not (args.simde / "simde" / "x86" / "avx512.h").is_file():
        parser.error(f"--simde must name a folder holding simde/x86/avx512.h, got {args.simde}")
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    library = emulate(args.isa, args.simde.resolve())
    print(f"emulated {args.isa}: {library}", flush=True)
    import pytest

    paths = [a for a in pytest_args if Path(a.split("::")[0]).exists()]  # not an option's value (-k int8)
    return int(pytest.main(pytest_args + ([] if paths else [f"tests/inference/{name}" for name in TESTS])))


if __name__ == "__main__":
    sys.exit(main())
