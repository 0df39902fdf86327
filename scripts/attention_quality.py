"""How close our prompt attention kernel and torch's SDPA each come to float64 attention on a model's real q/k/v.

Prefills a source file (default: the standard library's ``argparse.py``) through the engine with SDPA prompt
attention, keeps every layer's q/k/v, and runs each layer's attention three ways: ``inference.kernels``'
``causal_attention`` (``prompt_attention native``), torch's SDPA (``sdpa``) and float64 from the same bf16
inputs. Prints per layer and the median relative (Frobenius) error of each, as JSON. A minute or two on CPU.

    python scripts/attention_quality.py --model qwen2.5-coder-1.5b-instruct --tokens 1500
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.attention import cpu_prompt  # noqa: E402
from inference.attention import sdpa as sdpa_backend  # noqa: E402


def float64_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    n, heads, _ = q.shape
    length, kv_heads, _ = k.shape
    kr = k.double().repeat_interleave(heads // kv_heads, 1).transpose(0, 1)
    vr = v.double().repeat_interleave(heads // kv_heads, 1).transpose(0, 1)
    s = q.double().transpose(0, 1) @ kr.transpose(1, 2) * scale
    hidden = torch.arange(length)[None, :] > (torch.arange(n)[:, None] + length - n)
    return (torch.softmax(s.masked_fill(hidden, float("-inf")), -1) @ vr).transpose(0, 1)


def captured_layers(model: str, text: str, tokens: int) -> list[tuple]:
    from inference.config import CacheConfig, EngineConfig
    from inference.engine import Engine
    from inference.sampling import SamplingParams

    engine = Engine(EngineConfig(model=model, compile_decode="off", prompt_attention="sdpa",
                                 max_num_batched_tokens=max(tokens, 512),
                                 cache=CacheConfig(enable_prefix_caching=False, kv_cache_tokens=tokens + 64)))
    layers = []
    original = sdpa_backend.SdpaAttention._prefill

    def keep(self, q, k, v, cache, meta, i, scale):
        layers.append((q.clone(), k.clone(), v.clone(), scale))
        return original(self, q, k, v, cache, meta, i, scale)

    sdpa_backend.SdpaAttention._prefill = keep
    try:
        engine.generate([engine.tokenizer.encode(text)[:tokens]], SamplingParams(max_tokens=1))
    finally:
        sdpa_backend.SdpaAttention._prefill = original
    return layers


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--source", type=Path, default=Path(argparse.__file__))
    p.add_argument("--tokens", type=int, default=1500)
    args = p.parse_args()
    from inference import kernels

    if not kernels.attention_available():
        print("our attention kernel cannot run here (no AVX-512 BF16 / VNNI, or no compiler)", file=sys.stderr)
        return 1
    layers = captured_layers(args.model, args.source.read_text(), args.tokens)
    if not layers or layers[0][0].dtype != torch.bfloat16:
        print("the model does not compute in bf16 here: nothing to compare", file=sys.stderr)
        return 1
    rows = []
    for q, k, v, scale in layers:
        exact = float64_attention(q, k, v, scale)
        errors = {name: ((out.double() - exact).norm() / exact.norm()).item() for name, out in
                  (("native", cpu_prompt.attend(q, k, v, scale)), ("sdpa", cpu_prompt.sdpa_causal(q, k, v, scale)))}
        rows.append(errors)
    print(json.dumps({"model": args.model, "source": str(args.source), "tokens": layers[0][0].shape[0],
                      "median_rel_error": {k: statistics.median(r[k] for r in rows) for k in ("native", "sdpa")},
                      "layers_native_worse": sum(r["native"] > r["sdpa"] for r in rows), "layers": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
