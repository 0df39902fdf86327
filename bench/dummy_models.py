"""Random-weight models in real Qwen2.5-Coder shapes, built in memory, for the GPU benchmark (bench/gpu_parts.py).

``dummy_engine`` wraps one in the real :class:`inference.engine.Engine` (scheduler, KV cache manager, model
runner: triton attention and decode CUDA graphs on a GPU, SDPA on a CPU), so a benchmark measures the engine
that serves requests, not a copy of its batching loop; ``hf_dummy_model`` is the same shapes for the HF peer.
Weights do not change speed, so nothing is downloaded and nothing is written to disk.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from inference.attention import get_backend
from inference.models.config import ModelConfig

SHAPES: dict[str, dict[str, int]] = {  # Qwen2.5-Coder configs (HF config.json); tiny: CPU rehearsals
    "qwen2.5-coder-0.5b": dict(num_layers=24, hidden_size=896, intermediate_size=4864, num_heads=14,
                               num_kv_heads=2, head_dim=64, vocab_size=151936),
    "qwen2.5-coder-1.5b": dict(num_layers=28, hidden_size=1536, intermediate_size=8960, num_heads=12,
                               num_kv_heads=2, head_dim=128, vocab_size=151936),
    "qwen2.5-coder-7b": dict(num_layers=28, hidden_size=3584, intermediate_size=18944, num_heads=28,
                             num_kv_heads=4, head_dim=128, vocab_size=152064),
    "tiny": dict(num_layers=2, hidden_size=64, intermediate_size=128, num_heads=4, num_kv_heads=2, head_dim=16,
                 vocab_size=512),
}
BLOCK_SIZE = 16


def model_config(shape: str, max_len: int = 16384) -> ModelConfig:
    return ModelConfig(arch="qwen2", max_position_embeddings=max_len, rope_theta=1e6, attention_bias=True,
                       tie_word_embeddings=shape.endswith(("0.5b", "1.5b")), **SHAPES[shape])


def _backend(device: str) -> str:
    return "triton" if device.startswith("cuda") else "sdpa"


def dummy_model(cfg: ModelConfig, device: str = "cuda", final_norm: float = 1.0) -> torch.nn.Module:
    """Our model with small random weights, built directly on ``device`` in bf16. ``final_norm`` scales the
    logits: at 1.0 their spread is ~0.6 and greedy picks are near ties (a rounding flips them); at 50 the
    top token stands clear, so greedy agreement between two numerics says something."""
    from inference.models.llama import LlamaModel

    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaModel(cfg, get_backend(_backend(device)), max_positions=cfg.max_position_embeddings)
    model = model.to(torch.bfloat16).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02) if p.dim() > 1 else p.fill_(1.0 if p.shape[0] == cfg.hidden_size else 0.0)
        model.norm.weight.fill_(final_norm)
    return model


def dummy_engine(model: torch.nn.Module, cfg: ModelConfig, device: str, max_num_seqs: int, max_model_len: int,
                 cuda_graphs: bool = True, kv_cache_dtype: str = "auto", kv_cache_bytes: int | None = None):
    """The real :class:`Engine` over ``model`` (prefix cache off: every run pays its prefill); ``kv_cache_dtype``
    and ``kv_cache_bytes`` as in :class:`inference.config.CacheConfig`."""
    from inference.config import CacheConfig, EngineConfig
    from inference.engine import Engine
    from inference.model_runner import ModelRunner
    from inference.models.loader import LoadedModel
    from inference.models.tiny import make_word_tokenizer

    config = EngineConfig(model=f"dummy:{cfg.hidden_size}", dtype="bfloat16", device=device,
                          attention_backend=_backend(device), max_num_seqs=max_num_seqs, max_model_len=max_model_len,
                          max_num_batched_tokens=4096, enable_cuda_graphs=cuda_graphs,
                          cache=CacheConfig(block_size=BLOCK_SIZE, enable_prefix_caching=False,
                                            kv_cache_dtype=kv_cache_dtype, kv_cache_bytes=kv_cache_bytes))
    loaded = LoadedModel(model=model, config=cfg, tokenizer=make_word_tokenizer(cfg.vocab_size), eos_token_ids=set(),
                         source=None)
    return Engine(config, runner=ModelRunner(config, loaded=loaded))


def free_memory() -> None:
    """Collect garbage and return cached GPU memory (between the parts' models)."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device: str) -> None:
    """Wait for the GPU (timings stop when the work is done, not when it is queued)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_generate(engine, prompts: list[list[int]], max_new: list[int]) -> dict[str, Any]:
    """Greedy generation of every prompt to exactly its ``max_new`` tokens, all in flight at once."""
    from inference.sampling import SamplingParams

    params = [SamplingParams(max_tokens=n, ignore_eos=True) for n in max_new]
    graphs = engine.runner.graphs
    replays, steps = (graphs.num_replays if graphs else 0), engine.stats().num_steps
    sync(engine.config.device)
    start = time.perf_counter()
    outs = engine.generate(prompts, params)
    sync(engine.config.device)
    wall = time.perf_counter() - start
    generated = sum(len(o.outputs[0].token_ids) for o in outs)
    return {"wall_s": wall, "generated_tokens": generated, "tok_per_s": generated / wall,
            "steps": engine.stats().num_steps - steps, "graph_steps": (graphs.num_replays if graphs else 0) - replays}


def hf_dummy_model(cfg: ModelConfig, device: str = "cuda") -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    hf_cfg = Qwen2Config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=cfg.tie_word_embeddings,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(hf_cfg).to(torch.bfloat16).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model
