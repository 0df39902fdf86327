"""Rollouts through the tiny engine and the real sandbox; faults: no code, sandbox failing mid-batch."""

from __future__ import annotations

import pytest

from rl.config import RolloutSettings
from rl.rewards import RewardSpec
from rl.rollout import collect, eval_task
from sandbox.types import RunResult, RunStatus
from tests.rl.helpers import add_task, tiny_config


@pytest.fixture(scope="module")
def engine(tiny_qwen2_dir, tmp_path_factory):
    from rl.training_phase import make_engine

    return make_engine(tiny_config(tiny_qwen2_dir, tmp_path_factory.mktemp("run")))


SETTINGS = RolloutSettings(group_size=3, prompts_per_step=2, max_tokens=10, sandbox="bwrap")


def test_groups_share_the_prompt_and_are_judged(engine):
    tasks = [add_task(1), add_task(2)]
    batch = collect(engine, tasks, SETTINGS, RewardSpec(), seed=1)
    assert len(batch.rollouts) == 6 and len(batch.groups(3)) == 2
    for r in batch.rollouts:
        assert r.prompt_token_ids == batch.rollouts[0 if r.task_id == "t/1" else 3].prompt_token_ids
        assert 1 <= len(r.completion_token_ids) <= 10 and len(r.engine_logprobs) == len(r.completion_token_ids)
        assert r.status in {s.value for s in RunStatus} | {"no_code"} and not r.skipped
        if r.code is None:
            assert r.status == "no_code" and r.parts["missing_code"] == -1.0
        else:
            assert r.status != "no_code" and r.parts["missing_code"] == 0.0
    assert batch.num_generated_tokens == sum(len(r.completion_token_ids) for r in batch.rollouts)
    again = collect(engine, tasks, SETTINGS, RewardSpec(), seed=1)
    assert [r.completion_token_ids for r in again.rollouts] == [r.completion_token_ids for r in batch.rollouts]
    assert engine.stats().num_blocks_owned == 0


def test_prompt_is_the_eval_chat_prompt(engine):
    from evals.prompts import PromptMode, build_prompt

    task = add_task(3)
    text = build_prompt(eval_task(task), PromptMode.CHAT, engine.tokenizer).text
    assert "assert add3(1) == 4" in text and text.endswith("```python\n")


def test_sandbox_failure_mid_batch_retries_then_skips_the_group(engine):
    calls = []

    def flaky(jobs, **kw):
        calls.append(len(jobs))
        return [RunResult(RunStatus.SANDBOX_ERROR, message="container died") if i == 0
                else RunResult(RunStatus.FAILED) for i in range(len(jobs))]

    batch = collect(engine, [add_task(1), add_task(2)], SETTINGS, RewardSpec(), seed=2, run_many=flaky)
    if not calls:
        pytest.skip("the tiny model produced no code at all this time")
    assert calls[1] == 1  # only the failed job is retried
    skipped = [r for r in batch.rollouts if r.skipped]
    assert len(skipped) == 1 and skipped[0].fraction_passed == 0.0
    assert batch.skipped_groups == [skipped[0].task_id]
    assert len(batch.groups(3)) == 1  # the group with a skipped sample is not trained on


def test_output_with_no_code_is_penalised():
    spec = RewardSpec()
    total, parts = spec("I cannot help with that.", None, None)
    assert parts["missing_code"] == -1.0 and total < 0


def test_a_prompt_the_engine_refuses_skips_only_that_task(engine):
    from dataclasses import replace

    huge = replace(add_task(9), task_id="huge", instruction="x " * 2000)
    batch = collect(engine, [huge, add_task(1)], SETTINGS, RewardSpec(), seed=3)
    assert {r.task_id for r in batch.rollouts} == {"t/1"} and len(batch.groups(3)) == 1


def test_tampering_samples_are_flagged_and_keep_the_hardened_verdict(monkeypatch):
    from types import SimpleNamespace

    import rl.rollout as rollout
    from rl.training_phase import step_metrics

    task = add_task(1)
    texts = ["```python\ndef add1(x):\n    return x + 1\n```",
             "```python\nclass Yes:\n    def __eq__(self, other):\n        return True\n\ndef add1(x):\n    return Yes()\n```",
             "```python\nimport json\njson.dumps = str\n\ndef add1(x):\n    return x + 1\n```"]
    out = SimpleNamespace(outputs=[SimpleNamespace(index=i, text=t, token_ids=[1], logprobs=[0.0])
                                   for i, t in enumerate(texts)])
    monkeypatch.setattr(rollout, "generate_groups", lambda *args: ([(task, [1], out)], 0.1))
    batch = collect(SimpleNamespace(adapter_key=None), [task], SETTINGS, RewardSpec(), seed=0)
    assert [r.status for r in batch.rollouts] == ["passed", "failed", "passed"]
    assert [r.tamper_rules for r in batch.rollouts] == [[], ["equality-override"], ["module-patch"]]
    metrics = step_metrics(1, batch, {}, group_size=3, wall_s=1.0)
    assert metrics["tamper_flagged"] == 2 and metrics["tamper_rules"] == {"equality-override": 1, "module-patch": 1}
