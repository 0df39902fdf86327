"""How much the packed int4 weights change a model's predictions on real code, per int4 group size.

Simulates ``quantize_int4`` (dequantized back to the model dtype) on every linear layer of the HF model and
compares next-token predictions with the dense weights over the source files of a mined tasks file:
top-1 agreement with dense, next-token accuracy, mean KL(dense || int4). ``--kernels int4x8`` also runs every
linear layer through our int4 x int8 kernel itself (int8 activations per block of 32; ``inference.kernels``),
the decode path of ``weight_quant`` ``hybrid_int4x8``; ``--kernels int8x8`` runs them through our int8 x int8
prefill GEMM (int8 weights per channel; ``prefill_quant`` ``int8x8``). Slow (HF forwards, minutes).

    python scripts/int4_quality.py runs/tasks/marshmallow.jsonl --model qwen2.5-coder-0.5b-instruct --kernels int4x8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference import kernels  # noqa: E402
from inference.catalog import model_dir  # noqa: E402
from inference.models.hybrid_linear import PackedWeight  # noqa: E402
from inference.models.quant_linear import dequantize_int4, quantize_int4  # noqa: E402


class KernelLinear(torch.nn.Module):
    """A linear layer served by a packed kernel for every row (as generated rows are in the engine)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, kind: str, group: int | None) -> None:
        super().__init__()
        self.packed, self.bias = PackedWeight(weight, kind, group), bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.packed.matmul(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)
        return y if self.bias is None else y + self.bias


def replace_module(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent), attr, module)


def source_texts(tasks: Path, chars: int = 5000) -> list[str]:
    """Up to three ``chars``-long pieces of each distinct source file of the tasks."""
    files: dict[str, str] = {}
    for line in tasks.read_text().splitlines():
        t = json.loads(line)
        files.setdefault(t["path"], t["prefix"] + t["middle"] + t["suffix"])
    return [text[i:i + chars] for text in files.values() for i in (0, chars, 2 * chars) if len(text) > i + 2000]


@torch.no_grad()
def logits(model, ids_list: list[torch.Tensor]) -> list[torch.Tensor]:
    return [model(ids).logits[0].float() for ids in ids_list]


def compare(dense: list[torch.Tensor], quant: list[torch.Tensor], ids_list: list[torch.Tensor]) -> dict:
    agree = correct = correct_dense = total = 0
    kl = 0.0
    for ld, lq, ids in zip(dense, quant, ids_list, strict=True):
        target, pd, pq = ids[0, 1:], ld[:-1].argmax(-1), lq[:-1].argmax(-1)
        agree += int((pd == pq).sum())
        correct += int((pq == target).sum())
        correct_dense += int((pd == target).sum())
        total += len(target)
        kl += torch.nn.functional.kl_div(lq[:-1].log_softmax(-1), ld[:-1].log_softmax(-1), log_target=True,
                                         reduction="sum").item()
    return {"top1_agree_with_dense": round(agree / total, 4), "next_token_acc": round(correct / total, 4),
            "dense_next_token_acc": round(correct_dense / total, 4), "mean_kl": round(kl / total, 4),
            "tokens": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tasks", type=Path, help="tasks JSONL from `codeloop tasks mine`")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--groups", default="32,64")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--kernels", default="", help="also run the layers through these packed kernels (int4x8, int8x8)")
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = model_dir(args.model) / "hf"
    tokenizer = AutoTokenizer.from_pretrained(hf)
    model = AutoModelForCausalLM.from_pretrained(hf, torch_dtype=torch.bfloat16).eval()
    ids_list = [tokenizer(t, return_tensors="pt").input_ids[:, :args.max_tokens] for t in source_texts(args.tasks)]
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    linears = [model.get_submodule(n) for n in names]
    original = [m.weight.detach().clone() for m in linears]
    dense = logits(model, ids_list)
    results = {}
    for kind in filter(None, args.kernels.split(",")):
        if kind in ("int4x8", "int8x8") and not kernels.available():
            results[kind] = "unavailable on this machine (see the log)"
            continue
        for group in map(int, args.groups.split(",")) if kind != "int8x8" else [None]:
            for name, m, w in zip(names, linears, original, strict=True):
                replace_module(model, name, KernelLinear(w, m.bias, kind, group))
            results[kind if group is None else f"{kind}_g{group}"] = compare(dense, logits(model, ids_list), ids_list)
        for name, m in zip(names, linears, strict=True):
            replace_module(model, name, m)
    for group in map(int, args.groups.split(",")):
        for m, w in zip(linears, original, strict=True):
            q, sz = quantize_int4(w, group)
            m.weight = torch.nn.Parameter(dequantize_int4(q, sz.to(w.dtype), w.dtype), requires_grad=False)
        results[f"int4_g{group}"] = compare(dense, logits(model, ids_list), ids_list)
    print(json.dumps({"model": args.model, "tasks": str(args.tasks), **results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
