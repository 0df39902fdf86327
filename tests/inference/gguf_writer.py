"""Write a GGUF file from a tiny HF folder the way llama.cpp's converter lays it out (test helper)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

HF_TO_GGUF = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def gguf_name(hf_name: str) -> str:
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf_name in top:
        return top[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    module, _, kind = rest.rpartition(".")
    return f"blk.{layer}.{HF_TO_GGUF[module]}.{kind}"


def permute(w: np.ndarray, num_heads: int) -> np.ndarray:
    """llama.cpp's Q/K row permutation for llama-arch (rotate-half halves -> interleaved pairs)."""
    return w.reshape(num_heads, 2, w.shape[0] // num_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(hf_dir: Path, out: Path, quant: dict[str, str] | None = None) -> Path:
    """``quant`` maps a substring of GGUF tensor names to a type ("Q8_0", "Q4_0", "F16"); default F32."""
    import gguf
    from safetensors.torch import load_file

    cfg = json.loads((hf_dir / "config.json").read_text())
    arch = cfg["model_type"]
    tok = json.loads((hf_dir / "tokenizer.json").read_text())
    w = gguf.GGUFWriter(str(out), arch)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    _add_tokenizer(w, tok, cfg)
    weights = load_file(hf_dir / "model.safetensors")
    for name, t in weights.items():
        if cfg.get("tie_word_embeddings") and name == "lm_head.weight":
            continue
        arr = t.to(torch.float32).numpy()
        gname = gguf_name(name)
        if arch == "llama" and ".attn_q." in gname:
            arr = permute(arr, cfg["num_attention_heads"])
        elif arch == "llama" and ".attn_k." in gname:
            arr = permute(arr, cfg["num_key_value_heads"])
        kind = next((k for sub, k in (quant or {}).items() if sub in gname and arr.ndim == 2), "F32")
        if kind == "F16":
            w.add_tensor(gname, arr.astype(np.float16))
        elif kind == "F32":
            w.add_tensor(gname, arr)
        else:
            qtype = gguf.GGMLQuantizationType[kind]
            w.add_tensor(gname, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _add_tokenizer(w, tok: dict, cfg: dict) -> None:
    vocab = tok["model"]["vocab"]
    added = {a["content"]: a["id"] for a in tok["added_tokens"]}
    tokens = [""] * cfg["vocab_size"]
    types = [1] * cfg["vocab_size"]
    for text, i in {**vocab, **added}.items():
        tokens[i] = text
        if text in added:
            types[i] = 3
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
