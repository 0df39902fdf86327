"""Micro benchmark: decode tok/s of our ModelRunner (bf16 dense / int8 / int4 weights) vs HF transformers bf16.

Uses a random-weight model with Qwen2.5-Coder-0.5B's shapes written once to a cache folder (weights do not
change speed). Prints one JSON object. Short by design; run on an otherwise idle machine, compare ratios.

    .venv/bin/python -m bench.model_decode --threads 1 --new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

QWEN05_SHAPES = dict(
    hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
    num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1_000_000.0,
    rms_norm_eps=1e-6, tie_word_embeddings=True, initializer_range=0.02,
)


def make_model_dir(root: Path) -> Path:
    from transformers import AutoConfig, AutoModelForCausalLM

    from inference.models.tiny import make_tokenizer

    out = root / "qwen2-0.5b-shaped-random"
    if (out / "model.safetensors").exists():
        return out
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model("qwen2", **QWEN05_SHAPES), dtype=torch.bfloat16)
    model.save_pretrained(out)
    make_tokenizer().save_pretrained(out)
    return out


def bench_runner(model_dir: Path, quant: str, prompt: list[int], new_tokens: int, kv: str, batch: int) -> dict:
    from inference.batch import SeqChunk, StepBatch
    from inference.config import CacheConfig, EngineConfig
    from inference.model_runner import ModelRunner
    from inference.sampling import SamplingParams

    runner = ModelRunner(EngineConfig(model=str(model_dir), dtype="bfloat16", weight_quant=quant,
                                      cache=CacheConfig(block_size=16, kv_cache_dtype=kv)))
    per_seq = -(-(len(prompt) + new_tokens) // 16)
    runner.allocate_kv(per_seq * batch)
    tables = [list(range(s * per_seq, (s + 1) * per_seq))[::-1] for s in range(batch)]
    params = SamplingParams(max_tokens=new_tokens, ignore_eos=True)
    runner.execute(StepBatch([SeqChunk(batch, prompt[:16], 0, [0], True, params)]))  # warm-up
    t0 = time.perf_counter()
    out = runner.execute(StepBatch([SeqChunk(s, prompt, 0, tables[s], True, params) for s in range(batch)]))
    prefill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(new_tokens - 1):
        chunks = [SeqChunk(t.seq_id, [t.token_id], len(prompt) + i, tables[t.seq_id], True, params, num_generated=i + 1)
                  for t in out]
        out = runner.execute(StepBatch(chunks))
    decode_s = time.perf_counter() - t0
    return {"prefill_s": round(prefill_s, 3), "decode_tok_s": round(batch * (new_tokens - 1) / decode_s, 2)}


def bench_hf(model_dir: Path, prompt: list[int], new_tokens: int, batch: int) -> dict:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    ids = torch.tensor([prompt] * batch)

    def run(n: int) -> float:
        t0 = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return time.perf_counter() - t0

    with torch.inference_mode():
        run(2)  # warm-up
        first = run(1)  # prefill + first token
        total = run(new_tokens)
    return {"prefill_s": round(first, 3), "decode_tok_s": round(batch * (new_tokens - 1) / max(total - first, 1e-9), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/codeloop-bench"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--modes", default="hf,none,int8,int4")
    parser.add_argument("--batch", type=int, default=1, help="sequences decoding together")
    parser.add_argument("--kv", default="auto", choices=["auto", "int8"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = make_model_dir(args.cache)
    prompt = torch.randint(1000, 100000, (args.prompt_tokens,), generator=torch.Generator().manual_seed(0)).tolist()
    results = {"threads": args.threads, "batch": args.batch, "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens}
    for mode in args.modes.split(","):
        if mode == "hf":
            results["hf_bf16"] = bench_hf(model_dir, prompt, args.new_tokens, args.batch)
        else:
            results[f"ours_{mode}"] = bench_runner(model_dir, mode, prompt, args.new_tokens, args.kv, args.batch)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
