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
from inference.config import CacheConfig, EngineConfig  # noqa: E402
from inference.cuda_graphs import DecodeCudaGraphs  # noqa: E402
from inference.engine import Engine  # noqa: E402
from inference.model_runner import ModelRunner  # noqa: E402
from inference.models.config import ModelConfig  # noqa: E402
from inference.models.loader import LoadedModel  # noqa: E402
from inference.models.tiny import make_word_tokenizer  # noqa: E402
from inference.sampling import SamplingParams  # noqa: E402
from tests.inference.test_triton_backend import build_meta  # noqa: E402

BLOCK_SIZE = 16


def tiny_model(backend: str = "triton") -> tuple[torch.nn.Module, ModelConfig]:
    from inference.models.llama import LlamaModel

    cfg = ModelConfig(arch="qwen2", num_layers=2, hidden_size=256, intermediate_size=512, num_heads=8,
                      num_kv_heads=2, head_dim=128, vocab_size=1000, max_position_embeddings=1024,
                      attention_bias=True)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaModel(cfg, get_backend(backend), max_positions=1024)
    return model.to(torch.bfloat16).eval(), cfg


def kv_caches(cfg: ModelConfig, num_blocks: int, int8: bool = False) -> list[LayerKVCache]:
    shape = (num_blocks, BLOCK_SIZE, cfg.num_kv_heads, cfg.head_dim)
    dtype = torch.int8 if int8 else torch.bfloat16
    scales = (lambda: [torch.zeros(shape[:3], device="cuda") for _ in range(2)]) if int8 else (lambda: [None, None])
    return [LayerKVCache(torch.zeros(shape, dtype=dtype, device="cuda"), torch.zeros(shape, dtype=dtype, device="cuda"),
                         *scales()) for _ in range(cfg.num_layers)]


def engine_over(model: torch.nn.Module, cfg: ModelConfig, cuda_graphs: bool) -> Engine:
    """The real engine over an in-memory model (triton attention; decode CUDA graphs when asked)."""
    config = EngineConfig(model="in-memory", dtype="bfloat16", device="cuda", attention_backend="triton",
                          max_num_seqs=8, max_model_len=1024, enable_cuda_graphs=cuda_graphs,
                          cache=CacheConfig(block_size=BLOCK_SIZE, kv_cache_bytes=64 << 20))
    loaded = LoadedModel(model=model, config=cfg, tokenizer=make_word_tokenizer(cfg.vocab_size), eos_token_ids=set(),
                         source=None)
    return Engine(config, runner=ModelRunner(config, loaded=loaded))


def tables_for(lengths: list[int]) -> list[list[int]]:
    """Disjoint block tables long enough for sequences of ``lengths`` tokens (+ one decode token)."""
    tables, next_block = [], 0
    for n in lengths:
        count = n // BLOCK_SIZE + 1
        tables.append(list(range(next_block, next_block + count)))
        next_block += count
    return tables


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
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    results = []
    for use_graphs in (False, True):
        engine = engine_over(model, cfg, use_graphs)
        results.append([o.outputs[0].token_ids for o in engine.generate(prompts, params)])
        if use_graphs:
            assert engine.runner.graphs.num_replays >= 10
        assert engine.stats().num_blocks_owned == 0
        del engine
    assert results[0] == results[1]


def test_cuda_graph_replay_hidden_matches_eager_and_pads():
    model, cfg = tiny_model()
    caches = kv_caches(cfg, num_blocks=32)
    graphs = DecodeCudaGraphs(model, caches, max_num_seqs=4, max_model_len=256, buckets=(1, 2, 4))
    graphs.capture()
    lengths = [9, 30, 2]
    tables = tables_for(lengths)
    with torch.inference_mode():
        prompt = torch.randint(0, 1000, (sum(lengths),), device="cuda")
        positions = torch.cat([torch.arange(n, device="cuda") for n in lengths])
        model(prompt, positions, caches, build_meta(lengths, [0, 0, 0], tables, BLOCK_SIZE))  # prefill
        ids = torch.randint(0, 1000, (3,), device="cuda")
        pos = torch.tensor(lengths, device="cuda")
        decode = lambda: build_meta([1, 1, 1], lengths, tables, BLOCK_SIZE)  # noqa: E731
        eager = model(ids, pos, caches, decode())
        replay = graphs.run(ids, pos, decode()).clone()  # rewrites the same K/V slots
    assert graphs.bucket_for(3) == 4 and graphs.num_replays == 1
    torch.testing.assert_close(replay, eager, atol=2e-2, rtol=2e-2)


def test_int8_kv_decode_logits_close_to_bf16():
    model, cfg = tiny_model()
    prompt = torch.randint(0, cfg.vocab_size, (200,), device="cuda")
    tables = tables_for([200])
    logits = []
    for int8 in (False, True):
        caches = kv_caches(cfg, num_blocks=32, int8=int8)
        with torch.inference_mode():
            model(prompt, torch.arange(200, device="cuda"), caches, build_meta([200], [0], tables, BLOCK_SIZE))
            hidden = model(torch.tensor([7], device="cuda"), torch.tensor([200], device="cuda"), caches,
                           build_meta([1], [200], tables, BLOCK_SIZE))
            logits.append(model.compute_logits(hidden))
    rel = (logits[0] - logits[1]).abs().max() / logits[0].abs().max()
    assert rel < 0.05
