"""LLM.int8() weights on GPU through bitsandbytes: ``weight_quant="bnb_int8"`` (drop-in Linear swap).

Every ``nn.Linear`` except ``lm_head`` becomes ``bnb.nn.Linear8bitLt(has_fp16_weights=False,
threshold=6.0)``: int8 weights with row-wise scales; activation columns with an outlier above the
threshold run in fp16 (the LLM.int8() decomposition). Quantization happens when the module moves to
CUDA, so call this on a CPU (or meta-free) model and then ``.to("cuda")``. For QLoRA training, load the
base with NF4 instead (``bnb.nn.Linear4bit(quant_type="nf4", compute_dtype=torch.bfloat16)``, or
transformers' ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
bnb_4bit_use_double_quant=True)``) and train peft LoRA adapters on top.
"""

from __future__ import annotations

import torch
from torch import nn

LLM_INT8_THRESHOLD = 6.0


def quantize_linears_bnb_int8(model: nn.Module, threshold: float = LLM_INT8_THRESHOLD,
                              skip: tuple[str, ...] = ("lm_head",)) -> int:
    """Replace ``nn.Linear`` modules in place (names ending in ``skip`` kept); returns how many were replaced.

    Raises ``RuntimeError`` with an install hint when bitsandbytes is missing.
    """
    try:
        import bitsandbytes as bnb
    except ImportError as exc:
        raise RuntimeError("weight_quant='bnb_int8' needs bitsandbytes (pip install bitsandbytes; CUDA only)") from exc
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and not name.endswith(skip)]
    for name, linear in targets:
        parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        q = bnb.nn.Linear8bitLt(linear.in_features, linear.out_features, bias=linear.bias is not None,
                                has_fp16_weights=False, threshold=threshold)
        q.weight = bnb.nn.Int8Params(linear.weight.data.to(torch.float16).cpu(), requires_grad=False,
                                     has_fp16_weights=False)
        if linear.bias is not None:
            q.bias = nn.Parameter(linear.bias.data.to(torch.float16).cpu(), requires_grad=False)
        setattr(parent, name.rpartition(".")[2], q)
    return len(targets)
