"""GPU engine benchmark with dummy weights in Qwen2.5-Coder-0.5B / -1.5B / -7B shapes, against HF transformers.

``python -m bench.gpu OUTDIR [--quick] [--parts a,b] [--budget-s 300]`` runs each part of
:mod:`bench.gpu_parts` and :mod:`bench.gpu_attention` in its own child process under its own timeout (a hung
kernel cannot stall the rest), and writes ``OUTDIR/bench_gpu.json``: per part either its numbers,
``{"error": ...}`` (a failed part is recorded, never fatal) or ``{"skipped": ...}`` (no CUDA device here:
``scripts/gpu_check.sh`` still runs on a CPU machine). :func:`run_gpu_bench` is the same for other callers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Part:
    """One measurement: ``bench.<module>.<func>(*args, quick=...)`` (module ``gpu_parts`` unless ``func`` names
    one) with at most ``timeout_s`` seconds."""

    name: str
    func: str
    args: tuple[str, ...]
    timeout_s: int


PARTS = (  # cheapest first, so a slow card still yields the attention numbers
    Part("int8_kv_decode_attention_8k", "gpu_attention.part_int8_attention", ("qwen2.5-coder-7b",), 25),
    Part("prefill_attention", "gpu_attention.part_prefill_attention", ("qwen2.5-coder-7b",), 25),
    Part("decode_bs1_0.5b", "part_decode_bs1", ("qwen2.5-coder-0.5b",), 50),
    Part("decode_bs1_1.5b", "part_decode_bs1", ("qwen2.5-coder-1.5b",), 50),
    Part("decode_bs1_7b", "part_decode_bs1", ("qwen2.5-coder-7b",), 60),
    Part("batch64_1.5b", "part_batch64", ("qwen2.5-coder-1.5b",), 75),
    Part("int8_kv_engine_1.5b", "part_int8_kv_engine", ("qwen2.5-coder-1.5b",), 75),
)


def run_gpu_bench(out_dir: Path, parts: list[str] | None = None, quick: bool = False,
                  budget_s: float = 300.0, cuda: bool | None = None) -> dict[str, Any]:
    """Run the chosen parts (all by default) within ``budget_s`` seconds; returns and writes the results.

    ``cuda``: whether a CUDA device is here (None: ask torch); without one every part is skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [p for p in PARTS if parts is None or p.name in parts]
    unknown = set(parts or ()) - {p.name for p in PARTS}
    if unknown:
        raise ValueError(f"unknown benchmark parts {sorted(unknown)}; known: {[p.name for p in PARTS]}")
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    deadline = time.monotonic() + budget_s
    results: dict[str, Any] = {"quick": quick, "parts": {}}
    for part in chosen:
        left = deadline - time.monotonic()
        if not cuda:
            results["parts"][part.name] = {"skipped": "no CUDA device"}
        elif left < 10:
            results["parts"][part.name] = {"error": "skipped: benchmark time budget spent"}
        else:
            results["parts"][part.name] = _run_part(part, out_dir, quick, min(part.timeout_s, left))
        (out_dir / "bench_gpu.json").write_text(json.dumps(results, indent=1))
    return results


def _run_part(part: Part, out_dir: Path, quick: bool, timeout_s: float) -> dict[str, Any]:
    out_file = out_dir / f"part_{part.name}.json"
    out_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.gpu", "--run-part", part.func, "--part-out", str(out_file),
           *(["--quick"] if quick else []), *(f"--part-arg={a}" for a in part.args)]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=os.environ.copy())
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-1500:]
        return {"error": f"timed out after {timeout_s:.0f} s", "stderr_tail": str(tail)}
    wall = time.monotonic() - start
    if proc.returncode != 0 or not out_file.exists():
        return {"error": f"exit code {proc.returncode}", "stderr_tail": proc.stderr[-3000:], "wall_s": wall}
    return {**json.loads(out_file.read_text()), "part_wall_s": wall}


def part_function(func: str):
    """The function a :class:`Part` names (``name`` in bench.gpu_parts, or ``module.name`` in bench)."""
    import importlib

    module, _, name = func.rpartition(".")
    return getattr(importlib.import_module(f"bench.{module or 'gpu_parts'}"), name)


def _child(func: str, args: list[str], quick: bool, out: Path) -> int:
    result = part_function(func)(*args, quick=quick)
    out.write_text(json.dumps(result, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", nargs="?", type=Path)
    p.add_argument("--quick", action="store_true", help="shorter runs (smoke test)")
    p.add_argument("--parts", default=None, help=f"comma-separated subset of {[x.name for x in PARTS]}")
    p.add_argument("--budget-s", type=float, default=300.0, help="total seconds for all parts")
    p.add_argument("--run-part", default=None, help=argparse.SUPPRESS)
    p.add_argument("--part-out", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--part-arg", action="append", default=[], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run_part:
        return _child(args.run_part, args.part_arg, args.quick, args.part_out)
    if args.out_dir is None:
        p.error("OUTDIR is required")
    parts = args.parts.split(",") if args.parts else None
    try:
        results = run_gpu_bench(args.out_dir, parts, args.quick, args.budget_s)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
