"""On a CUDA GPU: Triton kernels vs references at real model shapes, CUDA-graph decode == eager decode."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():  # skip before any kernel module is imported (they must not be interpreted)
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
pytest.importorskip("triton")

from inference.attention import get_backend  # noqa: E402
from inference.attention.metadata import LayerKVCache  # noqa: E402
from inference.bench_gpu_parts import Seq, build_step, kv_caches, run_requests  # noqa: E402
from inference.cuda_graphs import DecodeCudaGraphs  # noqa: E402
from inference.models.config import ModelConfig  # noqa: E402
from tests.inference.test_triton_backend import build_meta  # noqa: E402


def tiny_model(backend: str = "triton") -> tuple[torch.nn.Module, ModelConfig]:
    from inference.models.llama import LlamaModel

    cfg = ModelConfig(arch="qwen2", num_layers=2, hidden_size=256, intermediate_size=512, num_heads=8,
                      num_kv_heads=2, head_dim=128, vocab_size=1000, max_position_embeddings=1024,
                      attention_bias=True)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaModel(cfg, get_backend(backend), max_positions=1024)
    return model.to(torch.bfloat16).eval(), cfg


@pytest.mark.parametrize("quant", [False, True])
@pytest.mark.parametrize(("num_heads", "num_kv_heads"), [(12, 2), (28, 4)])  # Qwen2.5-Coder 1.5B / 7B
def test_triton_matches_sdpa_at_model_shapes(quant, num_heads, num_kv_heads):
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(512, generator=g).tolist()
    tables = [perm[0:100], perm[100:200], perm[200:400]]
    steps = [([300, 37, 1000], [0, 0, 0]), ([1, 1, 200], [300, 37, 1000]), ([1, 1, 1], [301, 38, 1200])]
    shape = (512, 16, num_kv_heads, 128)

    def cache():
        if quant:
            z = lambda: torch.zeros(shape, dtype=torch.int8, device="cuda")  # noqa: E731
            return LayerKVCache(z(), z(), torch.zeros(shape[:3], device="cuda"), torch.zeros(shape[:3], device="cuda"))
        return LayerKVCache(torch.zeros(shape, dtype=torch.bfloat16, device="cuda"),
                            torch.zeros(shape, dtype=torch.bfloat16, device="cuda"))

    caches = {"sdpa": cache(), "triton": cache()}
    for query_lens, computed in steps:
        n = sum(query_lens)
        q = torch.randn(n, num_heads, 128, device="cuda", dtype=torch.bfloat16)
        kv = torch.randn(n, 2 * num_kv_heads, 128, device="cuda", dtype=torch.bfloat16)
        outs = {}
        for name in ("sdpa", "triton"):
            meta = build_meta(query_lens, computed, tables, 16)
            backend = get_backend(name)
            backend.write_kv(caches[name], kv[:, :num_kv_heads], kv[:, num_kv_heads:], meta)
            outs[name] = backend.forward(q, kv[:, :num_kv_heads], kv[:, num_kv_heads:], caches[name], meta, 128**-0.5)
        torch.testing.assert_close(outs["triton"].float(), outs["sdpa"].float(), atol=3e-2, rtol=3e-2)
    assert torch.equal(caches["triton"].k, caches["sdpa"].k)
    if quant:
        assert torch.equal(caches["triton"].k_scale, caches["sdpa"].k_scale)


def test_cuda_graph_decode_equals_eager_decode():
    model, cfg = tiny_model()
    prompts = [torch.randint(0, cfg.vocab_size, (n,)).tolist() for n in (5, 40, 17, 90, 3)]
    results = []
    for use_graphs in (False, True):
        caches = kv_caches(cfg, num_blocks=64)
        graphs = None
        if use_graphs:
            graphs = DecodeCudaGraphs(model, caches, max_num_seqs=8, max_model_len=1024)
            graphs.capture()
        seqs = [Seq(list(p), 12) for p in prompts]
        stats = run_requests(model, caches, seqs, graphs)
        if use_graphs:
            assert stats["graph_steps"] >= 10
        results.append([s.tokens for s in seqs])
    assert results[0] == results[1]


def test_cuda_graph_replay_hidden_matches_eager_and_pads():
    model, cfg = tiny_model()
    caches = kv_caches(cfg, num_blocks=32)
    graphs = DecodeCudaGraphs(model, caches, max_num_seqs=4, max_model_len=256, buckets=(1, 2, 4))
    graphs.capture()
    seqs = [Seq(torch.randint(0, 1000, (n,)).tolist(), 4, block_table=[]) for n in (9, 30, 2)]
    run_requests(model, caches, seqs)  # prefill + a few decodes
    for s in seqs:
        s.num_computed = len(s.tokens) - 1  # re-run the last token: its K/V slot is simply rewritten
    ids, pos, meta = build_step([(s, 1) for s in seqs])
    with torch.inference_mode():
        eager = model(ids, pos, caches, meta)
        ids, pos, meta = build_step([(s, 1) for s in seqs])
        replay = graphs.run(ids, pos, meta).clone()
    assert graphs.bucket_for(3) == 4
    torch.testing.assert_close(replay, eager, atol=2e-2, rtol=2e-2)


def test_int8_kv_decode_logits_close_to_bf16():
    model, cfg = tiny_model()
    prompt = torch.randint(0, cfg.vocab_size, (200,)).tolist()
    logits = []
    for int8 in (False, True):
        caches = kv_caches(cfg, num_blocks=32, int8=int8)
        seq = Seq(list(prompt), 1)
        seq.block_table = list(range(13))
        with torch.inference_mode():
            ids, pos, meta = build_step([(seq, 200)])
            model(ids, pos, caches, meta)
            seq.num_computed, seq.tokens = 200, prompt + [7]
            ids, pos, meta = build_step([(seq, 1)])
            logits.append(model.compute_logits(model(ids, pos, caches, meta)))
    rel = (logits[0] - logits[1]).abs().max() / logits[0].abs().max()
    assert rel < 0.05
