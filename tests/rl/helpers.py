"""Shared builders for rl tests: a tiny-model RLConfig and hand-made tasks."""

from __future__ import annotations

from pathlib import Path

from rl.config import RLConfig, config_from_dict
from rl.tasks import RLTask


def tiny_config(model_dir: Path, run_dir: Path, **train) -> RLConfig:
    return config_from_dict({
        "model": str(model_dir), "run_dir": str(run_dir), "seed": 3, "engine_dtype": "float32",
        "max_model_len": 512, "kv_cache_mb": 8,
        "lora": {"r": 4, "alpha": 8},
        "rollout": {"group_size": 2, "prompts_per_step": 2, "max_tokens": 8, "temperature": 1.0},
        "train": {"dtype": "float32", "num_threads": 1, "lr": 1e-2, "micro_batch": 2, **train},
    })


def add_task(i: int) -> RLTask:
    return RLTask(task_id=f"t/{i}", instruction=f'"""\nAdd {i} to x.\nassert add{i}(1) == {i + 1}\n"""\n',
                  tests=(f"assert add{i}(1) == {i + 1}", f"assert add{i}(2) == {i + 2}"),
                  reference=f"def add{i}(x):\n    return x + {i}\n", entry_point=f"add{i}", source="test")
