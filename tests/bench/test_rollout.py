"""``codeloop bench rollout`` on a tiny model: the engine and both HF peers generate and are timed."""

from __future__ import annotations

import json

from codeloop.cli import main


def test_rollout_bench_times_engine_and_hf_peers(tiny_qwen2_dir, tmp_path, capsys):
    config = tmp_path / "rl.json"
    config.write_text(json.dumps({
        "model": str(tiny_qwen2_dir), "run_dir": str(tmp_path / "run"), "engine_dtype": "float32",
        "max_model_len": 1024, "kv_cache_mb": 16,
        "rollout": {"group_size": 2, "max_tokens": 6, "temperature": 1.0},
        "train": {"dtype": "float32", "num_threads": 1}}))
    assert main(["bench", "rollout", "--config", str(config), "--prompts", "2", "--out", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["group_size"] == 2 and result["prompts"] == 2
    assert 0 < result["engine"]["tokens"] <= 2 * 2 * 6
    for name in ("hf_grouped", "hf_batch"):
        assert 0 < result[name]["tokens"] <= 2 * 2 * 6 and result[name]["tok_s"] > 0
        assert result[f"ratio_vs_{name}"] > 0
