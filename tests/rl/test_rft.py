"""RFT as rejection-sampling fine-tuning is defined: plain NLL (T=1) of distinct passing solutions, capped per
task; dropout only in the update forwards (issue 23, doubtful points)."""

from __future__ import annotations

import pytest
import torch

from rl.grpo import select_rft
from rl.rollout import Rollout
from rl.trainer import Sample, Trainer
from tests.rl.helpers import tiny_config
from tests.rl.test_trainer import rollouts_from_engine


def rollout(task: str, i: int, code: str | None, passed: bool) -> Rollout:
    return Rollout(task, i, [1], [2], code or "", code, 1.0 if passed else 0.0, {},
                   "passed" if passed else "failed", 1.0 if passed else 0.0, None)


def test_distinct_passing_solutions_capped_per_task():
    same = "def f(x):\n    return x + 1\n"
    same_reformatted = "def f(x):  # add one\n    return (x+1)\n"
    other = "def f(x):\n    y = x\n    return y + 1\n"
    third = "def f(x):\n    return 1 + x\n"
    easy = [rollout("easy", i, c, True) for i, c in enumerate([same, same, same_reformatted, other, same, third,
                                                                other, same])]
    hard = [rollout("hard", i, other if i == 3 else "def f(x): pass", i == 3) for i in range(8)]
    keep = select_rft([easy, hard], max_per_task=2)
    assert [r.sample_index for r, k in zip(easy, keep[:8], strict=True) if k] == [0, 3]
    assert [r.sample_index for r, k in zip(hard, keep[8:], strict=True) if k] == [3]
    assert sum(select_rft([easy], max_per_task=8)) == 3  # distinct: same, other, third


@pytest.fixture(scope="module")
def engine_and_groups(tiny_qwen2_dir, tmp_path_factory):
    from rl.training_phase import make_engine

    engine = make_engine(tiny_config(tiny_qwen2_dir, tmp_path_factory.mktemp("e")))
    groups = rollouts_from_engine(engine, ["def fib(n):", "for i in range(10):"])
    for g in groups:
        for r in g:
            r.code = f"def f():\n    return {r.sample_index}\n"  # distinct, so every passing sample is kept
    return engine, groups


def test_rft_loss_is_the_plain_nll_at_temperature_one(tiny_qwen2_dir, tmp_path, engine_and_groups):
    """Sampling at T=0.5 explores; the SFT loss is still the model's own NLL (no 1/T, no tempered softmax)."""
    _, groups = engine_and_groups
    config = tiny_config(tiny_qwen2_dir, tmp_path, algo="rft")
    config.rollout.temperature = 0.5
    trainer = Trainer(config, tiny_qwen2_dir)
    kept = [Sample(r.prompt_token_ids, r.completion_token_ids, 0.0, True) for g in groups for r in g
            if r.status == "passed"]
    trainer.model.eval()
    with torch.no_grad():
        lp, mask = trainer.logprobs(kept, temperature=1.0)
    expected = float(-(lp * mask).sum() / mask.sum())
    metrics = trainer.step(groups)
    assert metrics["loss"] == pytest.approx(expected, rel=1e-4)


def test_updates_train_with_dropout_and_references_do_not(tiny_qwen2_dir, tmp_path, engine_and_groups):
    """``model.train()`` for the forwards that get gradients (LoRA dropout on when configured), ``eval()`` for
    the old / reference log-probs (deterministic)."""
    _, groups = engine_and_groups
    config = tiny_config(tiny_qwen2_dir, tmp_path, updates_per_step=2, micro_batch=1)
    config.lora.dropout = 0.5
    trainer = Trainer(config, tiny_qwen2_dir)
    modes: list[tuple[bool, bool]] = []
    trainer.model.register_forward_pre_hook(lambda m, *_: modes.append((m.training, torch.is_grad_enabled())))
    trainer.step(groups)
    assert modes and all(training == grad for training, grad in modes)
    assert any(training for training, _ in modes) and any(not training for training, _ in modes)
