"""How exactly the engine serves a trained LoRA adapter on the real model (issue 23, defect 3).

    python scripts/lora_exactness.py MODEL ADAPTER_DIR ROLLOUTS.jsonl [--num 16] [--out FILE.json]

Teacher-forced log-probs of the completions in ROLLOUTS.jsonl (an RL step's samples, prompts rebuilt from the
run's tasks) under: the engine in bf16 with the adapter unmerged; peft serving the adapter on the bf16 model;
the fp32 reference (HF + peft in fp32); and the engine in bf16 with the delta merged into its bf16 weights (what
the engine did before). Also how much of the delta a bf16 merge loses, element-wise, on the real weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def token_logprobs(logits: torch.Tensor, ids: list[int], start: int) -> torch.Tensor:
    """log-prob of ``ids[start:]`` from logits whose row i predicts ``ids[i + 1]``."""
    lp = torch.log_softmax(logits.float(), -1)[start - 1:len(ids) - 1]
    return lp.gather(1, torch.tensor(ids[start:])[:, None])[:, 0]


def hf_logprobs(model, seqs: list[tuple[list[int], int]]) -> list[torch.Tensor]:
    with torch.no_grad():
        return [token_logprobs(model(input_ids=torch.tensor([ids])).logits[0], ids, start) for ids, start in seqs]


def engine_logprobs(runner, seqs: list[tuple[list[int], int]], adapter_id: str | None) -> list[torch.Tensor]:
    from inference.batch import SeqChunk, StepBatch

    out = []
    for ids, start in seqs:
        chunk = SeqChunk(0, ids, 0, list(range(-(-len(ids) // runner.block_size))), sample=False, adapter_id=adapter_id)
        out.append(token_logprobs(runner.forward_logits(StepBatch([chunk])), ids, start))
    return out


def merge_loss(runner, fused) -> dict:
    """Fraction of delta elements a bf16 merge drops, and the cosine of the merged delta with the true one."""
    params = dict(runner.model.named_parameters())
    lost = total = 0
    dots = norms_a = norms_b = 0.0
    for name, lora in fused.items():
        w = params[f"{name}.weight"].float()
        for p in lora.parts:
            delta = p.scale * (p.b @ lora.a[p.col_start:p.col_stop])
            base = w[p.row_start:p.row_stop]
            merged = (base + delta).to(torch.bfloat16).float() - base
            lost += int((merged == 0).sum())
            total += delta.numel()
            dots += float((merged * delta).sum())
            norms_a += float((merged * merged).sum())
            norms_b += float((delta * delta).sum())
    return {"fraction_lost": lost / total, "cosine": dots / (norms_a * norms_b) ** 0.5}


def merge_into(runner, fused) -> None:
    params = dict(runner.model.named_parameters())
    with torch.no_grad():
        for name, lora in fused.items():
            w = params[f"{name}.weight"]
            for p in lora.parts:
                rows = slice(p.row_start, p.row_stop)
                w[rows] = (w[rows].float() + p.scale * (p.b @ lora.a[p.col_start:p.col_stop])).to(w.dtype)


def compare(a: list[torch.Tensor], b: list[torch.Tensor]) -> dict:
    d = torch.cat([x - y for x, y in zip(a, b, strict=True)])
    return {"max_abs": float(d.abs().max()), "mean_abs": float(d.abs().mean())}


def effect_error(base: list, tuned: list, ref_base: list, ref: list) -> float:
    """Relative L2 error of the adapter's effect on the log-probs against the fp32 reference's."""
    mine = torch.cat([t - b for t, b in zip(tuned, base, strict=True)])
    theirs = torch.cat([t - b for t, b in zip(ref, ref_base, strict=True)])
    return float((mine - theirs).norm() / theirs.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("adapter", type=Path)
    parser.add_argument("rollouts", type=Path)
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from bench.output import emit
    from evals.prompts import PromptMode, build_prompt
    from inference.catalog import resolve_model_path
    from inference.config import CacheConfig, EngineConfig
    from inference.lora import read_adapter
    from inference.model_runner import ModelRunner
    from rl.rollout import eval_task
    from rl.tasks import RLTask

    model_dir = resolve_model_path(args.model)
    run_dir = args.rollouts.parent.parent
    tasks = {t["task_id"]: RLTask.from_dict(t) for t in map(json.loads, (run_dir / "tasks.jsonl").read_text().splitlines())}
    records = [json.loads(x) for x in args.rollouts.read_text().splitlines() if x.strip()][:args.num]
    runner = ModelRunner(EngineConfig(model=str(model_dir), dtype="bfloat16", cache=CacheConfig(block_size=16)))
    runner.allocate_kv(256)
    tok = runner.tokenizer
    seqs = []
    for r in records:
        prompt = tok.encode(build_prompt(eval_task(tasks[r["task_id"]]), PromptMode.CHAT, tok).text)
        seqs.append((prompt + tok.encode(r["completion"])[:300], len(prompt)))
    adapter = read_adapter(args.adapter)
    runner.add_adapter("a@1", adapter)
    result = {"num_sequences": len(seqs), "num_tokens": sum(len(i) - s for i, s in seqs), "adapter": str(args.adapter)}
    eng_base, eng = engine_logprobs(runner, seqs, None), engine_logprobs(runner, seqs, "a@1")
    result["merge_loss"] = merge_loss(runner, runner.fuse_adapter(adapter))
    merge_into(runner, runner.fuse_adapter(adapter))
    eng_merged = engine_logprobs(runner, seqs, None)
    del runner
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    hf_base_bf16 = hf_logprobs(hf, seqs)
    peft_bf16 = hf_logprobs(PeftModel.from_pretrained(hf, args.adapter).eval(), seqs)
    del hf
    ref32 = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ref_base = hf_logprobs(ref32, seqs)
    ref = hf_logprobs(PeftModel.from_pretrained(ref32, args.adapter).eval(), seqs)
    result.update({
        "engine_unmerged_vs_peft_bf16": compare(eng, peft_bf16),
        "engine_base_vs_hf_base_bf16": compare(eng_base, hf_base_bf16),
        "engine_unmerged_vs_fp32_reference": compare(eng, ref),
        "engine_merged_vs_fp32_reference": compare(eng_merged, ref),
        "peft_bf16_vs_fp32_reference": compare(peft_bf16, ref),
        "adapter_effect_fp32": float(torch.cat([t - b for t, b in zip(ref, ref_base, strict=True)]).abs().mean()),
        "effect_error_unmerged": effect_error(eng_base, eng, ref_base, ref),
        "effect_error_merged": effect_error(eng_base, eng_merged, ref_base, ref),
        "effect_error_peft_bf16": effect_error(hf_base_bf16, peft_bf16, ref_base, ref),
    })
    emit(result, args.out)


if __name__ == "__main__":
    main()
