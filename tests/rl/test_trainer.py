"""Trainer on a tiny model: logprobs agree with the engine's, updates touch only LoRA, pushes are exact."""

from __future__ import annotations

import pytest
import torch

from rl.rollout import Rollout
from rl.trainer import Trainer
from rl.training_phase import make_engine
from tests.rl.helpers import tiny_config


def rollouts_from_engine(engine, prompts, group_size=2, max_tokens=8):
    from inference.sampling import SamplingParams

    params = SamplingParams(n=group_size, temperature=1.0, max_tokens=max_tokens, seed=5, logprobs=True,
                            ignore_eos=True)
    groups = []
    for j, prompt in enumerate(prompts):
        ids = engine.tokenizer.encode(prompt)
        out = engine.generate([ids], params)[0]
        groups.append([Rollout(f"t{j}", s.index, ids, s.token_ids, s.text, s.text, float(s.index + j), {},
                               "passed" if s.index == 0 else "failed", 0.0, None, s.logprobs)
                       for s in out.outputs])
    return groups


@pytest.fixture(scope="module")
def setup(tiny_qwen2_dir, tmp_path_factory):
    config = tiny_config(tiny_qwen2_dir, tmp_path_factory.mktemp("run"))
    return config, make_engine(config), Trainer(config, tiny_qwen2_dir)


def policy_logprobs(trainer, groups):
    from rl.trainer import Sample

    samples = [Sample(r.prompt_token_ids, r.completion_token_ids, 0.0, True) for g in groups for r in g]
    with torch.no_grad():
        lp, mask = trainer.logprobs(samples, temperature=1.0)
    return [lp[i, :int(mask[i].sum())] for i in range(len(samples))]


def test_update_changes_only_lora_and_engine_follows(setup, tmp_path):
    config, engine, trainer = setup
    groups = rollouts_from_engine(engine, ["def fib(n):", "for i in range(10):"])
    engine_lp = [torch.tensor(r.engine_logprobs) for g in groups for r in g]
    for mine, theirs in zip(policy_logprobs(trainer, groups), engine_lp, strict=True):
        assert torch.allclose(mine, theirs, atol=1e-4)  # LoRA starts at zero: policy == base == engine
    frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if not p.requires_grad}
    lora = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n for n in lora)
    metrics = trainer.step(groups)
    assert metrics["skipped_update"] == 0.0 and metrics["num_train_samples"] == 4
    assert all(k in metrics for k in ("loss", "kl", "clip_fraction", "grad_norm"))
    params = dict(trainer.model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
    assert any(not torch.equal(params[n], v) for n, v in lora.items())
    trainer.save_adapter(tmp_path / "adapter")
    engine.set_adapter(tmp_path / "adapter")
    again = rollouts_from_engine(engine, ["def fib(n):"])
    for mine, r in zip(policy_logprobs(trainer, again), again[0], strict=True):
        assert torch.allclose(mine, torch.tensor(r.engine_logprobs), atol=1e-3)  # engine serves the trained policy
    engine.set_adapter(None)


def test_equal_rewards_skip_the_update(setup):
    _, engine, trainer = setup
    groups = rollouts_from_engine(engine, ["x"])
    for r in groups[0]:
        r.reward = 1.0
    assert trainer.step(groups)["skipped_update"] == 1.0


def test_rft_trains_on_passing_samples_only(tiny_qwen2_dir, tmp_path, setup):
    _, engine, _ = setup
    config = tiny_config(tiny_qwen2_dir, tmp_path, algo="rft")
    trainer = Trainer(config, tiny_qwen2_dir)
    metrics = trainer.step(rollouts_from_engine(engine, ["def fib(n):", "x"]))
    assert metrics["num_train_samples"] == 2 and metrics["kept"] == 2.0 and metrics["loss"] > 0


def test_zero_kl_coef_skips_the_reference_forward(setup, monkeypatch):
    import dataclasses

    config, engine, trainer = setup
    groups = rollouts_from_engine(engine, ["def add(a, b):"])
    monkeypatch.setattr(trainer, "config", dataclasses.replace(config, grpo=dataclasses.replace(config.grpo, kl_coef=0.0)))
    calls = []
    original = trainer.model.disable_adapter
    monkeypatch.setattr(trainer.model, "disable_adapter", lambda: calls.append(1) or original())
    metrics = trainer.step(groups)
    assert metrics["skipped_update"] == 0.0 and metrics["kl"] == 0.0 and not calls


def test_mini_batches_make_several_off_policy_updates(tiny_qwen2_dir, tmp_path, setup):
    _, engine, _ = setup
    config = tiny_config(tiny_qwen2_dir, tmp_path, updates_per_step=2, micro_batch=1)
    trainer = Trainer(config, tiny_qwen2_dir)
    metrics = trainer.step(rollouts_from_engine(engine, ["def fib(n):", "for i in range(10):"]))
    assert metrics["num_updates"] == 2 and metrics["num_train_samples"] == 4
    steps = {int(state["step"]) for state in trainer.optimizer.state.values()}
    assert steps == {2}
    # the second mini-batch is scored against the policy before the first update: its ratio moved off 1
    assert metrics["ratio_mean"] != 1.0


def test_updates_per_step_must_be_positive(tiny_qwen2_dir, tmp_path):
    from rl.config import ConfigError

    with pytest.raises(ConfigError, match="updates_per_step"):
        tiny_config(tiny_qwen2_dir, tmp_path, updates_per_step=0)
