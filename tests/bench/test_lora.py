"""`codeloop bench lora` on the tiny model: the random adapter is a valid peft folder and every figure is there."""

from __future__ import annotations

from bench.lora import MODES, measure, write_random_adapter
from inference.config import CacheConfig, EngineConfig
from inference.engine import Engine
from inference.lora import read_adapter


def test_bench_measures_every_mode_side_by_side(tiny_qwen2_dir, tmp_path):
    engine = Engine(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", max_num_seqs=16,
                                 cache=CacheConfig(kv_cache_bytes=1 << 22, enable_prefix_caching=False)))
    cfg = engine.runner.model_config
    for seed, name in enumerate(("a", "b")):
        folder = write_random_adapter(tmp_path / name, cfg, rank=4, seed=seed)
        assert len(read_adapter(folder).pairs) == 7 * cfg.num_layers
        engine.load_adapter(folder, name)
    result = measure(engine, prompt_tokens=40, decode_tokens=3, repeats=1)
    assert set(result) == {"prefill", "decode_1", "decode_16"}
    for figures in result.values():
        assert all(figures[m] > 0 for m in MODES) and figures["ratio_adapter"] > 0
    assert engine.stats().num_blocks_owned == 0
