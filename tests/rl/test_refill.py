"""``rollout.refill_prompts``: a step whose groups cannot teach anything (RFT: no passing sample; GRPO: equal
rewards) draws more prompts, up to the cap, never one already in the step; off by default."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from rl.config import ConfigError, config_from_dict
from rl.rollout import Rollout, RolloutBatch
from rl.training_phase import Phase
from tests.rl.helpers import add_task, tiny_config

PASSING = {"t/3", "t/5"}  # the only tasks whose samples pass


def _rollout(task_id: str, i: int, passed: bool) -> Rollout:
    return Rollout(task_id, i, [1, 2], [3, 4], "x", "x", float(passed), {}, "passed" if passed else "failed",
                   float(passed), None)


class Source:
    def __init__(self, group_size: int) -> None:
        self.group_size, self.calls = group_size, []

    def collect(self, engine, tasks, settings, spec, seed, run_many=None):
        self.calls.append(([t.task_id for t in tasks], seed))
        rollouts = [_rollout(t.task_id, i, t.task_id in PASSING) for t in tasks for i in range(self.group_size)]
        return RolloutBatch(rollouts, len(rollouts), 1.0, 1.0, len(rollouts))


def _phase(tmp_path, algo: str, refill: int, num_tasks: int = 8):
    config = tiny_config(tmp_path / "model", tmp_path / "run", algo=algo, checkpoint_every=1_000)
    config = replace(config, rollout=replace(config.rollout, refill_prompts=refill))
    trained = []
    trainer = SimpleNamespace(step=lambda groups, anchors: trained.append(groups) or {},
                              save_adapter=lambda folder: None)
    engine = SimpleNamespace(set_adapter=lambda *a, **k: None)
    source = Source(config.rollout.group_size)
    phase = Phase(config, engine, trainer, [add_task(i) for i in range(num_tasks)], source=source)
    return phase, source, trained


@pytest.mark.parametrize("algo", ["rft", "grpo"])
def test_a_step_without_signal_draws_more_prompts_up_to_the_cap(tmp_path, algo):
    phase, source, trained = _phase(tmp_path, algo, refill=4)
    record = phase.one_step()
    order = record["task_order"]
    assert len(order) == len(set(order)) and order == [t for ids, _ in source.calls for t in ids]
    assert source.calls[0][0] == order[:2] and len({seed for _, seed in source.calls}) == len(source.calls)
    teaching = [t for t in order if t in PASSING]
    # it stops once prompts_per_step (2) groups teach, or when 4 more prompts were drawn
    assert len(teaching) == 2 or record["refilled_prompts"] == 4
    assert record["refilled_prompts"] >= 1  # this seed's first two prompts hold at most one passing task
    if algo == "rft" and record["refilled_prompts"] < 4:
        assert source.calls[-1][0][-1] in PASSING  # the prompt that filled the quota was the last drawn
    assert record["refilled_prompts"] == len(order) - 2 <= 4
    assert {g[0].task_id for g in trained[0]} == set(order)  # every group reaches the trainer
    if algo == "grpo":  # all-equal rewards: a group of passing samples teaches GRPO nothing either
        assert record["refilled_prompts"] == 4


def test_off_by_default_one_collect_per_step(tmp_path):
    phase, source, _ = _phase(tmp_path, "rft", refill=0)
    record = phase.one_step()
    assert len(source.calls) == 1 and record["refilled_prompts"] == 0 and len(record["task_order"]) == 2


def test_refill_must_not_be_negative():
    with pytest.raises(ConfigError, match="refill_prompts"):
        config_from_dict({"rollout": {"refill_prompts": -1}})
