"""The real 0.5B model (slow): rollouts solve easy MBPP-train tasks; trainer logprobs match the engine's."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    from inference.catalog import resolve_model
    from rl.config import config_from_dict

    try:
        resolve_model("qwen2.5-coder-0.5b-instruct")
    except Exception as exc:  # noqa: BLE001 - not pulled on this machine
        pytest.skip(f"real model unavailable: {exc}")
    return config_from_dict({
        "run_dir": str(tmp_path_factory.mktemp("run")), "kv_cache_mb": 256, "max_model_len": 1024,
        "rollout": {"group_size": 2, "prompts_per_step": 2, "max_tokens": 200, "temperature": 0.7, "sandbox": "auto"},
        "train": {"num_threads": 2, "micro_batch": 2},
    })


def test_real_rollouts_and_one_update(config):
    import torch

    from rl.rewards import RewardSpec
    from rl.rollout import collect
    from rl.tasks import from_mbpp
    from rl.trainer import Sample, Trainer
    from rl.training_phase import make_engine

    torch.set_num_threads(2)
    engine = make_engine(config)
    tasks = [t for t in from_mbpp("train") if t.task_id in ("Mbpp/602", "Mbpp/604")]
    batch = collect(engine, tasks, config.rollout, RewardSpec(), seed=0)
    assert sum(r.status == "passed" for r in batch.rollouts) >= 1, [r.completion for r in batch.rollouts]
    from inference.catalog import resolve_model_path

    trainer = Trainer(config, resolve_model_path(config.model))
    r = batch.rollouts[0]
    with torch.no_grad():
        lp, mask = trainer.logprobs([Sample(r.prompt_token_ids, r.completion_token_ids, 0.0, True)], 1.0)
    gap = (lp[0, :int(mask[0].sum())] - torch.tensor(r.engine_logprobs)).abs().mean()
    assert gap < 0.1  # bf16 engine vs bf16 HF: same policy up to rounding
