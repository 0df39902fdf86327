"""One-time conversion of a GGUF checkpoint into an HF folder (bf16 safetensors + tokenizer + config).

transformers dequantizes GGUF tensors and converts the GGUF tokenizer; we save the result with safetensors
directly (``save_pretrained`` refuses a GGUF-loaded model) so later loads take seconds instead of a minute.
"""

from __future__ import annotations

import gc
from pathlib import Path


def convert_gguf_to_hf(gguf: Path, out: Path, dtype: str = "bfloat16") -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(out))
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype), low_cpu_mem_usage=True
    )
    config = model.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    config.save_pretrained(str(out))
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        generation.eos_token_id = end_token_ids(tokenizer, generation.eos_token_id)
        generation.save_pretrained(str(out))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    del model, state
    gc.collect()


def end_token_ids(tokenizer, eos: int | list[int] | None) -> list[int]:
    """EOS ids to stop on: the model's own, the chat turn end, and ``<|endoftext|>`` (end of a FIM middle).

    GGUF metadata keeps a single EOS (the chat turn end for instruct models), but the upstream generation
    configs stop on both; without ``<|endoftext|>`` a fill-in-the-middle completion never ends.
    """
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    for token in (tokenizer.eos_token, "<|im_end|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token) if token else None
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id not in ids:
            ids.append(token_id)
    return ids
