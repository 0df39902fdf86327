"""Load a model + tokenizer from an HF folder (safetensors) or a GGUF file (dequantized with ``gguf``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from inference.models.config import ModelConfig
from inference.models.llama import LlamaModel, Rotary

_GGUF_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GGUF_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


class ModelLoadError(ValueError):
    """The model files are missing, malformed or of an unsupported kind."""


@dataclass
class LoadedModel:
    """A ready model with its tokenizer; ``eos_token_ids`` merges config, generation config and tokenizer."""

    model: LlamaModel
    config: ModelConfig
    tokenizer: Any
    eos_token_ids: set[int]
    source: Path


def load_model(
    path: Path,
    *,
    backend: object,
    dtype: torch.dtype = torch.bfloat16,
    device: str = "cpu",
    max_positions: int | None = None,
    weight_quant: str = "none",
) -> LoadedModel:
    """Load an HF folder or ``.gguf`` file into our :class:`LlamaModel` (``dtype``, then ``weight_quant``)."""
    path = Path(path)
    if path.is_dir():
        config, weights = read_hf_config(path), SafetensorsFolder(path)
        tokenizer, gguf_file = _load_tokenizer(path), None
    elif path.suffix == ".gguf" and path.is_file():
        config, weights = read_gguf(path)
        tokenizer, gguf_file = _load_tokenizer(path.parent, gguf_file=path.name), path
    else:
        raise ModelLoadError(f"{path} is neither an HF model folder nor a .gguf file")
    with torch.device("meta"), _SkipInit():
        model = LlamaModel(config, backend, max_positions=max_positions)
    model = model.to(dtype).to_empty(device=device)
    model.rotary = Rotary(config, max_positions or config.max_position_embeddings).to(device)  # fp32 tables
    if config.tie_word_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    in_place = _map_embedding(model, weights) if device == "cpu" and not config.tie_word_embeddings else ()
    on_loaded = None
    if weight_quant != "none":
        from inference.models.quant_linear import check_mode, quantize_model, quantize_module

        check_mode(weight_quant)

        def on_loaded(name: str) -> None:  # each layer quantized as it arrives: no whole dense copy resident
            module, _, leaf = name.rpartition(".")
            if leaf == "weight" and not (config.tie_word_embeddings and module == "lm_head"):
                quantize_module(model, module, weight_quant)
    try:
        model.load_hf_weights(weights, in_place=in_place, on_loaded=on_loaded)
    except ValueError as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc
    del weights
    if weight_quant != "none":
        quantize_model(model, weight_quant)  # what loading left dense: a tied lm_head gets its own copy
    model.eval()
    eos = set(config.eos_token_ids) | _generation_eos(path if gguf_file is None else path.parent)
    if tokenizer.eos_token_id is not None:
        eos.add(tokenizer.eos_token_id)
    return LoadedModel(model, config, tokenizer, eos, path)


def map_embedding_table(model: LlamaModel, source: Path | None) -> bool:
    """Serve a tied input embedding from ``source``'s safetensors file, mapped copy-on-write as an untied table
    is (:func:`_map_embedding`), once the lm_head no longer reads it (hybrid weights with a packed prompt copy
    give the lm_head packed copies for every row count), dropping the loaded table (a float32 152k x 1,536
    table: 890 MiB). False (the table stays) for an untied table (mapped at load already), one off the CPU, an
    lm_head that still reads it, a GGUF file or none (``source`` None: weights built in memory), or a file
    table in another shape or dtype."""
    if (not model.config.tie_word_embeddings or model.embed_tokens.weight.device.type != "cpu"
            or getattr(model.lm_head, "weight", None) is not None or source is None or not source.is_dir()):
        return False
    return bool(_map_embedding(model, SafetensorsFolder(source)))


class _SkipInit(TorchFunctionMode):
    """Skips ``torch.nn.init`` while a model is built on the meta device: every weight is loaded next, and
    torch's meta init kernels import ``torch._dynamo`` (and triton), ~120 MiB resident for the process's life."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


_SAFETENSORS_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def _map_embedding(model: LlamaModel, weights: Mapping[str, torch.Tensor]) -> tuple[str, ...]:
    """Serve an untied input embedding from the safetensors file, mapped copy-on-write, instead of a copy;
    the names of the parameters so placed (none for GGUF, or a file tensor in another shape or dtype).

    A prompt reads one row per token, so only the rows of tokens seen become resident (clean file pages the
    kernel may drop), not the whole table: 260 MiB for a 152k x 896 bf16 vocabulary. A 16-bit table also
    serves a float32 model (its rows are widened as they are read, exactly), which would otherwise hold a
    520 MiB copy. (A tied table is read whole by the lm_head every step.)
    """
    weight = model.embed_tokens.weight
    if not isinstance(weights, SafetensorsFolder):
        return ()
    widened = (torch.bfloat16, torch.float16) if weight.dtype == torch.float32 else ()
    mapped = weights.mapped("model.embed_tokens.weight", tuple(weight.shape), (weight.dtype, *widened))
    if mapped is None:
        return ()
    model.embed_tokens.weight = torch.nn.Parameter(mapped, requires_grad=False)
    return ("embed_tokens.weight",)


def read_hf_config(folder: Path) -> ModelConfig:
    path = folder / "config.json"
    if not path.exists():
        raise ModelLoadError(f"{folder} has no config.json")
    try:
        return ModelConfig.from_json(path)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc


def read_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of ``*.safetensors`` in ``folder`` (single file or shards)."""
    return dict(SafetensorsFolder(folder))


class SafetensorsFolder(Mapping):
    """The tensors of ``*.safetensors`` in a folder, each read from its file when looked up (a fresh copy).

    Loading copies one tensor at a time into the model and drops it; read through a whole-file mapping
    instead, every page read would stay resident until the last tensor was copied (the size of the file).
    """

    def __init__(self, folder: Path) -> None:
        from safetensors import safe_open

        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise ModelLoadError(f"{folder} has no *.safetensors weights")
        handles = [(safe_open(f, framework="pt", backend="pread"), f) for f in files]
        self._where = {name: (handle, f) for handle, f in handles for name in handle.keys()}

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._where[name][0].get_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def mapped(self, name: str, shape: tuple[int, ...], dtypes: Sequence[torch.dtype]) -> torch.Tensor | None:
        """Tensor ``name`` as a private copy-on-write mapping of its file (nothing read yet), in the file's dtype,
        or None when the file holds it in another shape or in none of ``dtypes``. NOTE: the file must only ever be replaced by rename (as
        ``model pull`` does): truncated in place, a read of a mapped page would raise SIGBUS."""
        file = self._where[name][1]
        with open(file, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            entry = json.loads(f.read(header_len))[name]
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype not in dtypes or tuple(entry["shape"]) != shape:
            return None
        start, end = entry["data_offsets"]
        raw = np.memmap(file, dtype=np.uint8, mode="c", offset=8 + header_len + start, shape=(end - start,))
        return torch.from_numpy(raw).view(dtype).view(shape)


def read_gguf(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Config and HF-named fp32 tensors from a GGUF file (quantized tensors dequantized).

    llama-arch GGUF stores Q/K rows permuted for llama.cpp's interleaved RoPE; we undo it so weights use
    HF's rotate-half layout. Qwen2 GGUF is written without the permutation.
    """
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise ModelLoadError(f"cannot read GGUF {path}: {exc}") from exc
    meta = {name: _field_value(f) for name, f in reader.fields.items() if not name.startswith("tokenizer.ggml.t")}
    names = {t.name for t in reader.tensors}
    meta["_tied"] = "output.weight" not in names
    embd = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embd is None:
        raise ModelLoadError(f"{path} has no token_embd.weight")
    meta["_vocab_size"] = int(embd.shape[-1])
    try:
        config = ModelConfig.from_gguf_fields(meta)
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc
    if "rope_freqs.weight" in names:  # NOTE: Llama-3.1 GGUFs bake RoPE scaling in; load the HF folder instead
        raise ModelLoadError(f"{path}: GGUF rope_freqs (Llama-3.1 RoPE scaling) is not supported yet")
    weights = {}
    for t in reader.tensors:
        arr = gguf.quants.dequantize(t.data, t.tensor_type)
        arr = np.asarray(arr, dtype=np.float32).reshape([int(d) for d in reversed(t.shape)])
        if config.arch == "llama" and ".attn_q." in t.name:
            arr = _unpermute(arr, config.num_heads)
        elif config.arch == "llama" and ".attn_k." in t.name:
            arr = _unpermute(arr, config.num_kv_heads)
        weights[_hf_name(t.name)] = torch.from_numpy(np.array(arr, dtype=np.float32, order="C"))  # own copy
    return config, weights


def _unpermute(w: np.ndarray, num_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's ``permute``: interleaved rotary pairs back to rotate-half halves."""
    half = w.shape[0] // num_heads // 2
    return w.reshape(num_heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _hf_name(gguf_name: str) -> str:
    base, _, kind = gguf_name.rpartition(".")
    if base in _GGUF_TOP_NAMES:
        return f"{_GGUF_TOP_NAMES[base]}.{kind}"
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _GGUF_LAYER_NAMES:
        return f"model.layers.{parts[1]}.{_GGUF_LAYER_NAMES[parts[2]]}.{kind}"
    raise ModelLoadError(f"unknown GGUF tensor {gguf_name!r}")


def _field_value(field: Any) -> Any:
    try:
        value = field.contents()
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    return value


def load_tokenizer(path: Path) -> Any:
    """The tokenizer of an HF folder or ``.gguf`` file, without the weights (a driver that only builds prompts)."""
    path = Path(path)
    return _load_tokenizer(path) if path.is_dir() else _load_tokenizer(path.parent, gguf_file=path.name)


def _load_tokenizer(folder: Path, gguf_file: str | None = None) -> Any:
    from transformers import AutoTokenizer

    try:
        if gguf_file is not None:
            return AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load tokenizer from {folder}: {exc}") from exc


def _generation_eos(folder: Path) -> set[int]:
    path = folder / "generation_config.json"
    if not path.exists():
        return set()
    try:
        eos = json.loads(path.read_text()).get("eos_token_id")
    except json.JSONDecodeError:
        return set()
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, list) else {int(eos)}
