"""Builders for LoRA tests: peft adapters with non-zero deltas on the tiny models, and HF reference log-probs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_peft_adapter(model_dir: Path, out_dir: Path, seed: int = 0, b_scale: float = 20.0,
                      **lora_config: Any) -> Any:
    """A non-zero peft LoRA (``init_lora_weights=False``) saved in peft format; returns the fp32 peft model.

    ``b_scale`` multiplies peft's random ``lora_B`` (20: deltas large enough to change greedy tokens of the
    tiny model; ~0.02: a trained adapter's size, smaller than half a bf16 step of most base weights).
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    options = {"r": 4, "lora_alpha": 8, "target_modules": TARGETS, "lora_dropout": 0.0, **lora_config}
    peft_model = get_peft_model(model, LoraConfig(init_lora_weights=False, **options))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(b_scale)
    peft_model.save_pretrained(out_dir)
    return peft_model.eval()


def load_peft(model_dir: Path, adapter_dir: Path | None, dtype: torch.dtype) -> Any:
    """HF model in ``dtype`` with the adapter loaded the way peft serves it (adapter weights kept in fp32)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    return (PeftModel.from_pretrained(model, adapter_dir) if adapter_dir else model).eval()


def hf_token_logprobs(model: Any, ids: list[int]) -> torch.Tensor:
    """fp32 log-prob of each next token ``ids[1:]`` under ``model`` (teacher forcing) ``[len(ids) - 1]``."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


def hf_greedy(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int) -> list[int]:
    ids = torch.tensor([tokenizer.encode(prompt)])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=None)
    return out[0, ids.shape[1]:].tolist()
