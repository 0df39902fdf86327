"""GPU benchmark measurements with dummy (random) weights in real model shapes; run by :mod:`inference.bench_gpu`.

Each ``part_*`` function returns a JSON-able dict. Our side is the model forward over the paged KV cache
with the triton backend (and CUDA graphs for decode), driven by a small continuous-batching loop; the
peer is HF transformers on the same GPU in the same process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from inference.attention import get_backend
from inference.attention.metadata import AttentionMetadata, LayerKVCache
from inference.models.config import ModelConfig

SHAPES: dict[str, dict[str, int]] = {  # Qwen2.5-Coder configs (HF config.json)
    "qwen2.5-coder-1.5b": dict(num_layers=28, hidden_size=1536, intermediate_size=8960, num_heads=12,
                               num_kv_heads=2, head_dim=128, vocab_size=151936),
    "qwen2.5-coder-7b": dict(num_layers=28, hidden_size=3584, intermediate_size=18944, num_heads=28,
                             num_kv_heads=4, head_dim=128, vocab_size=152064),
}
BLOCK_SIZE = 16


def model_config(shape: str, max_len: int = 16384) -> ModelConfig:
    return ModelConfig(arch="qwen2", max_position_embeddings=max_len, rope_theta=1e6, attention_bias=True,
                       tie_word_embeddings=shape.endswith("1.5b"), **SHAPES[shape])


def dummy_model(cfg: ModelConfig, backend: str = "triton") -> torch.nn.Module:
    """Our model with small random weights, built directly on the GPU in bf16."""
    from inference.models.llama import LlamaModel

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaModel(cfg, get_backend(backend), max_positions=cfg.max_position_embeddings)
    model = model.to(torch.bfloat16).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02) if p.dim() > 1 else p.fill_(1.0 if p.shape[0] == cfg.hidden_size else 0.0)
    return model


def hf_dummy_model(cfg: ModelConfig) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    hf_cfg = Qwen2Config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=cfg.tie_word_embeddings,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(hf_cfg).to(torch.bfloat16).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def kv_caches(cfg: ModelConfig, num_blocks: int, int8: bool = False) -> list[LayerKVCache]:
    shape = (num_blocks, BLOCK_SIZE, cfg.num_kv_heads, cfg.head_dim)
    dtype = torch.int8 if int8 else torch.bfloat16
    out = []
    for _ in range(cfg.num_layers):
        scales = [torch.zeros(shape[:3], device="cuda") for _ in range(2)] if int8 else [None, None]
        out.append(LayerKVCache(torch.zeros(shape, dtype=dtype, device="cuda"),
                                torch.zeros(shape, dtype=dtype, device="cuda"), *scales))
    return out


@dataclass
class Seq:
    tokens: list[int]
    max_new: int
    num_computed: int = 0
    block_table: list[int] = field(default_factory=list)
    generated: int = 0


def build_step(chunks: list[tuple[Seq, int]]) -> tuple[torch.Tensor, torch.Tensor, AttentionMetadata]:
    """Flat inputs + metadata for ``(seq, num_new_tokens)`` chunks (block tables already long enough)."""
    ids, pos, slots, starts, lens = [], [], [], [0], []
    for s, n in chunks:
        p = range(s.num_computed, s.num_computed + n)
        ids += s.tokens[s.num_computed : s.num_computed + n]
        pos += p
        slots += [s.block_table[i // BLOCK_SIZE] * BLOCK_SIZE + i % BLOCK_SIZE for i in p]
        starts.append(starts[-1] + n)
        lens.append(s.num_computed + n)
    width = max(len(s.block_table) for s, _ in chunks)
    tables = [s.block_table + [0] * (width - len(s.block_table)) for s, _ in chunks]
    cuda = lambda x, dt: torch.tensor(x, dtype=dt).pin_memory().to("cuda", non_blocking=True)  # noqa: E731
    meta = AttentionMetadata(
        slot_mapping=cuda(slots, torch.int64), query_start_loc=cuda(starts, torch.int32),
        seq_lens=cuda(lens, torch.int32), block_tables=cuda(tables, torch.int32), query_start_loc_list=starts,
        query_lens_list=[n for _, n in chunks], seq_lens_list=lens, num_computed_list=[s.num_computed for s, _ in chunks],
    )
    return cuda(ids, torch.int64), cuda(pos, torch.int64), meta


@torch.inference_mode()
def run_requests(model, caches, seqs: list[Seq], graphs=None, token_budget: int = 4096) -> dict[str, Any]:
    """Continuous batching of ``seqs`` to completion (greedy); prefill chunks share steps with decodes."""
    free = list(range(caches[0].k.shape[0]))
    running, steps, graph_steps = list(seqs), 0, 0
    torch.cuda.synchronize()
    start = time.perf_counter()
    while running:
        chunks, budget = [], token_budget
        for s in running:
            n = min(len(s.tokens) - s.num_computed, max(budget, 1))
            if n < 1 or budget < 1:
                continue
            while len(s.block_table) * BLOCK_SIZE < s.num_computed + n:
                s.block_table.append(free.pop())
            chunks.append((s, n))
            budget -= n
        ids, pos, meta = build_step(chunks)
        if graphs is not None and graphs.can_run(meta):
            hidden, graph_steps = graphs.run(ids, pos, meta), graph_steps + 1
        else:
            hidden = model(ids, pos, caches, meta)
        last = torch.tensor(meta.query_start_loc_list[1:], device="cuda") - 1
        next_ids = model.compute_logits(hidden[last]).argmax(-1).tolist()
        for (s, n), tok in zip(chunks, next_ids, strict=True):
            s.num_computed += n
            if s.num_computed == len(s.tokens):
                s.tokens.append(tok)
                s.generated += 1
        steps += 1
        done = [s for s in running if s.generated >= s.max_new]
        for s in done:
            free.extend(s.block_table)
        running = [s for s in running if s.generated < s.max_new]
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    generated = sum(s.generated for s in seqs)
    return {"wall_s": wall, "generated_tokens": generated, "tok_per_s": generated / wall, "steps": steps,
            "graph_steps": graph_steps}


def hbm_bandwidth() -> dict[str, float]:
    """Nominal HBM bandwidth of the card, and a measured device-to-device copy bandwidth."""
    name = torch.cuda.get_device_name()
    nominal = 4.8e12 if "H200" in name else 3.35e12 if "H100" in name else float("nan")
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    y.copy_(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    torch.cuda.synchronize()
    measured = 2 * x.numel() * 10 / (time.perf_counter() - t)
    return {"device": name, "nominal_bytes_per_s": nominal, "measured_copy_bytes_per_s": measured}


def cuda_time_ms(fn, repeats: int = 20) -> float:
    """Median time of ``fn()`` in milliseconds by CUDA events (after two warm-up calls)."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def _free() -> None:
    import gc

    gc.collect()
    torch.cuda.empty_cache()


def _weight_bytes_per_token(model: torch.nn.Module, cfg: ModelConfig) -> int:
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    if not cfg.tie_word_embeddings:  # an untied embedding table is read one row per token
        total -= cfg.vocab_size * cfg.hidden_size * 2
    return total


def _ours_decode_rates(cfg: ModelConfig, prompt: list[int], new: int) -> tuple[float, float, int]:
    """(CUDA-graph tok/s, eager tok/s, weight bytes per token) of batch-1 greedy decode after ``prompt``."""
    from inference.cuda_graphs import DecodeCudaGraphs

    model = dummy_model(cfg)
    caches = kv_caches(cfg, num_blocks=2 * 4096 // BLOCK_SIZE)
    graphs = DecodeCudaGraphs(model, caches, max_num_seqs=1, max_model_len=4096, buckets=(1,))
    graphs.capture()

    def rate(g) -> float:  # noqa: ANN001
        one = run_requests(model, caches, [Seq(list(prompt), 1)], g)["wall_s"]
        many = run_requests(model, caches, [Seq(list(prompt), new)], g)["wall_s"]
        return (new - 1) / (many - one)

    rate(None)  # compiles every kernel variant
    return rate(graphs), rate(None), _weight_bytes_per_token(model, cfg)


def _hf_decode_rate(cfg: ModelConfig, prompt: list[int], new: int) -> float:
    hf = hf_dummy_model(cfg)
    ids = torch.tensor([prompt], device="cuda")

    def seconds(n: int) -> float:
        torch.cuda.synchronize()
        t = time.perf_counter()
        hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    seconds(4)
    return (new - 1) / (seconds(new) - seconds(1))


def part_decode_bs1(shape: str, quick: bool = False) -> dict[str, Any]:
    """Batch-1 greedy decode tok/s (ours with CUDA graphs, ours eager, HF generate) vs the HBM bound."""
    cfg, prompt_len, new = model_config(shape, 4096), 512, 64 if quick else 128
    prompt = torch.randint(0, cfg.vocab_size, (prompt_len,)).tolist()
    ours_graph, ours_eager, weight_bytes = _ours_decode_rates(cfg, prompt, new)
    _free()
    hf_rate = _hf_decode_rate(cfg, prompt, new)
    _free()
    kv_bytes = 2 * cfg.num_layers * (prompt_len + new // 2) * cfg.num_kv_heads * cfg.head_dim * 2
    bw = hbm_bandwidth()
    bound = bw["nominal_bytes_per_s"] / (weight_bytes + kv_bytes)
    return {"shape": shape, "prompt_len": prompt_len, "new_tokens": new, "ours_cuda_graph_tok_s": ours_graph,
            "ours_eager_tok_s": ours_eager, "hf_generate_tok_s": hf_rate, "speedup_vs_hf": ours_graph / hf_rate,
            "bytes_per_token": weight_bytes + kv_bytes, "hbm_bound_tok_s": bound,
            "fraction_of_hbm_bound": ours_graph / bound, **bw}


def part_batch64(shape: str, quick: bool = False) -> dict[str, Any]:
    """64 concurrent mixed-length greedy requests: our continuous batching vs HF static batching."""
    from inference.cuda_graphs import DecodeCudaGraphs

    g = torch.Generator().manual_seed(0)
    n = 64
    prompt_lens = torch.randint(32, 512 if quick else 1024, (n,), generator=g).tolist()
    out_lens = torch.randint(16, 128 if quick else 256, (n,), generator=g).tolist()
    cfg = model_config(shape, 2048)
    prompts = [torch.randint(0, cfg.vocab_size, (p,), generator=g).tolist() for p in prompt_lens]
    model = dummy_model(cfg)
    caches = kv_caches(cfg, num_blocks=n * 2048 // BLOCK_SIZE)
    graphs = DecodeCudaGraphs(model, caches, max_num_seqs=n, max_model_len=2048)
    graphs.capture()
    run_requests(model, caches, [Seq(list(p[:64]), 4) for p in prompts[:8]], graphs)  # warm-up
    ours = run_requests(model, caches, [Seq(list(p), o) for p, o in zip(prompts, out_lens, strict=True)], graphs)
    del graphs, model, caches
    _free()
    hf = hf_dummy_model(cfg)
    width = max(prompt_lens)
    ids = torch.zeros(n, width, dtype=torch.long)
    mask = torch.zeros(n, width, dtype=torch.long)
    for i, p in enumerate(prompts):  # left padding
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    ids, mask = ids.cuda(), mask.cuda()
    hf.generate(ids[:8, -64:], attention_mask=mask[:8, -64:], max_new_tokens=4, do_sample=False)
    torch.cuda.synchronize()
    t = time.perf_counter()
    hf.generate(ids, attention_mask=mask, max_new_tokens=max(out_lens), min_new_tokens=max(out_lens),
                do_sample=False)
    torch.cuda.synchronize()
    hf_wall = time.perf_counter() - t
    del hf
    _free()
    useful = sum(out_lens)
    return {"shape": shape, "num_requests": n, "prompt_tokens": sum(prompt_lens), "useful_new_tokens": useful,
            "ours": ours, "hf_static_wall_s": hf_wall, "hf_static_useful_tok_s": useful / hf_wall,
            "speedup_vs_hf": ours["tok_per_s"] / (useful / hf_wall)}


def _decode_meta(batch: int, ctx: int) -> AttentionMetadata:
    blocks = -(-ctx // BLOCK_SIZE)
    tables = torch.arange(batch * blocks, dtype=torch.int32, device="cuda").view(batch, blocks)
    slots = tables[:, (ctx - 1) // BLOCK_SIZE].long() * BLOCK_SIZE + (ctx - 1) % BLOCK_SIZE
    return AttentionMetadata(
        slot_mapping=slots, query_start_loc=torch.arange(batch + 1, dtype=torch.int32, device="cuda"),
        seq_lens=torch.full((batch,), ctx, dtype=torch.int32, device="cuda"), block_tables=tables,
        query_start_loc_list=list(range(batch + 1)), query_lens_list=[1] * batch, seq_lens_list=[ctx] * batch,
        num_computed_list=[ctx - 1] * batch,
    )


def part_int8_attention(shape: str = "qwen2.5-coder-7b", ctx: int = 8192, quick: bool = False) -> dict[str, Any]:
    """One layer's decode attention time at ``ctx`` context: bf16 vs INT8 KV (triton), and SDPA bf16."""
    cfg = model_config(shape)
    out: dict[str, Any] = {"shape": shape, "context": ctx}
    for batch in (1, 16) if quick else (1, 16, 64):
        blocks = batch * -(-ctx // BLOCK_SIZE)
        q = torch.randn(batch, cfg.num_heads, cfg.head_dim, device="cuda", dtype=torch.bfloat16)
        row: dict[str, float] = {}
        for name, int8, backend in (("triton_bf16", False, "triton"), ("triton_int8", True, "triton"),
                                    ("sdpa_bf16", False, "sdpa")):
            cache = kv_caches(ModelConfig(**{**cfg.__dict__, "num_layers": 1}), blocks, int8)[0]
            if int8:
                cache.k.random_(-127, 128), cache.v.random_(-127, 128)
                cache.k_scale.fill_(0.01), cache.v_scale.fill_(0.01)
            else:
                cache.k.normal_(), cache.v.normal_()
            meta, impl = _decode_meta(batch, ctx), get_backend(backend)
            row[f"{name}_ms"] = cuda_time_ms(lambda: impl.forward(q, q, q, cache, meta, 0.088))  # noqa: B023
            _free()
        row["int8_speedup_vs_bf16"] = row["triton_bf16_ms"] / row["triton_int8_ms"]
        out[f"batch_{batch}"] = row
    return out


def part_prefill_attention(shape: str = "qwen2.5-coder-7b", quick: bool = False) -> dict[str, Any]:
    """Causal prefill attention TFLOP/s: our paged kernel vs SDPA's math backend (and its flash backend)."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cfg = model_config(shape)
    out: dict[str, Any] = {"shape": shape}
    for n in (1024, 2048) if quick else (1024, 4096):
        h, kvh, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        q = torch.randn(n, h, d, device="cuda", dtype=torch.bfloat16)
        k, v = torch.randn(n, kvh, d, device="cuda", dtype=torch.bfloat16), torch.randn_like(q[:, :kvh])
        cache = kv_caches(ModelConfig(**{**cfg.__dict__, "num_layers": 1}), -(-n // BLOCK_SIZE) + 1)[0]
        meta = AttentionMetadata(
            slot_mapping=torch.arange(n, device="cuda"), query_start_loc=torch.tensor([0, n], device="cuda").int(),
            seq_lens=torch.tensor([n], device="cuda").int(),
            block_tables=torch.arange(-(-n // BLOCK_SIZE), device="cuda").int().view(1, -1),
            query_start_loc_list=[0, n], query_lens_list=[n], seq_lens_list=[n], num_computed_list=[0],
        )
        ours = get_backend("triton")
        flops = 4 * n * n * d * h / 2  # causal: half of QK^T and PV
        qt, kt, vt = (x.transpose(0, 1).unsqueeze(0) for x in (q, k.repeat_interleave(h // kvh, 1),
                                                               v.repeat_interleave(h // kvh, 1)))
        row = {"ours_ms": cuda_time_ms(lambda: ours.forward(q, k, v, cache, meta, d**-0.5), 10)}  # noqa: B023
        for name, backend in (("sdpa_math", SDPBackend.MATH), ("sdpa_flash", SDPBackend.FLASH_ATTENTION)):
            with sdpa_kernel(backend):
                row[f"{name}_ms"] = cuda_time_ms(
                    lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=True), 5)  # noqa: B023
        for key in [k_ for k_ in row if k_.endswith("_ms")]:
            row[key.replace("_ms", "_tflops")] = flops / (row[key] * 1e-3) / 1e12
        row["speedup_vs_math"] = row["sdpa_math_ms"] / row["ours_ms"]
        out[f"seq_{n}"] = row
        _free()
    return out
