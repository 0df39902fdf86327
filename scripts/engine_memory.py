"""Where an engine's resident memory goes (issue 22, defect 12): VmRSS split by mapping, and malloc's view.

    python scripts/engine_memory.py --model qwen2.5-coder-0.5b-instruct --max-model-len 8192
        loads the engine as ``codeloop serve`` does (same imports) and reports after the imports and after
        loading: VmRSS / VmHWM, RssAnon / RssFile / RssShmem, glibc ``mallinfo2`` (heap, in use, free,
        mmapped) and the resident MiB per kind of mapping (heap, anonymous, shared libraries, model files).
    CODELOOP_CPU_BF16=0 python scripts/engine_memory.py ...
        dtype auto as on a CPU without hardware bf16 (memory does not depend on the CPU; speed does).
    python scripts/engine_memory.py --pid PID
        the same split for a running process (a ``codeloop serve`` between two benchmark levels).
Linux only (``/proc``); ``mallinfo2`` needs glibc >= 2.33 (left out otherwise, and for ``--pid``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import re
from pathlib import Path

STATUS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def status(pid: str) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in STATUS:
            out[key] = int(value.split()[0]) >> 10
    return out


def mappings(pid: str) -> dict[str, int]:
    """Resident MiB per kind of mapping."""
    kinds: dict[str, int] = {}
    kind = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            name = parts[5] if len(parts) > 5 else ""
            if not name:
                kind = "anonymous (malloc'd blocks over the mmap threshold, KV pool, thread arenas)"
            elif name.startswith("["):
                kind = name
            elif ".so" in name:
                kind = "shared libraries"
            elif name.endswith((".safetensors", ".gguf")):
                kind = "model file pages (mapped weights)"
            else:
                kind = "other files"
        elif line.startswith("Rss:"):
            kinds[kind] = kinds.get(kind, 0) + int(line.split()[1])
    return {k: v >> 10 for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]) if v >> 10}


def mallinfo() -> dict[str, int] | None:
    fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
              "keepcost")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in fields]

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return {"heap_mib": info.arena >> 20, "in_use_mib": info.uordblks >> 20, "free_mib": info.fordblks >> 20,
            "mmapped_mib": info.hblkhd >> 20}


def report(stage: str, pid: str = "self") -> dict:
    row = {"stage": stage, **status(pid), "mappings_mib": mappings(pid)}
    if pid == "self":
        row["malloc"] = mallinfo()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pid")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument("--weight-quant", default="none")
    parser.add_argument("--kv-dtype", default="auto")
    parser.add_argument("--dtype", default="auto", help="model dtype (auto: bf16 where the hardware computes it)")
    args = parser.parse_args()
    if args.pid:
        print(json.dumps(report("running", args.pid), indent=1))
        return
    import inference.server.app  # noqa: F401  (what `codeloop serve` imports before loading)
    from inference.config import CacheConfig, EngineConfig
    from inference.engine import Engine

    rows = [report("imports")]
    engine = Engine(EngineConfig(model=args.model, max_model_len=args.max_model_len, weight_quant=args.weight_quant,
                                 dtype=args.dtype, cache=CacheConfig(kv_cache_dtype=args.kv_dtype)))
    runner = engine.runner
    kinds = sorted({type(m).__name__ for m in runner.model.modules() if "Linear" in type(m).__name__})
    rows.append(report(f"engine loaded ({engine.num_blocks} KV blocks of {runner.kv_dtype}, none written; "
                       f"{runner.dtype} compute, {'/'.join(kinds)})"))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
