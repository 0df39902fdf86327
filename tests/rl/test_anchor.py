"""The general-skill anchor: the base's greedy answers, a KL that is zero at the base and holds a drifting
adapter back, the same anchors after a resume, and the phase hands them to the trainer."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from rl.anchor import Anchor, build_pool, for_step, load_or_build, signature_task
from rl.config import ConfigError, config_from_dict
from rl.trainer import Trainer
from rl.training_phase import Phase, make_engine
from tests.rl.helpers import add_task, tiny_config
from tests.rl.test_trainer import rollouts_from_engine


@pytest.fixture(scope="module")
def parts(tiny_qwen2_dir, tmp_path_factory):
    config = tiny_config(tiny_qwen2_dir, tmp_path_factory.mktemp("run"), algo="rft")
    config = replace(config, anchor=replace(config.anchor, per_step=2, pool=4, max_tokens=8))
    engine = make_engine(config)
    pool = build_pool(engine, [add_task(i) for i in range(6)], size=4, max_tokens=8, seed=3)
    groups = rollouts_from_engine(engine, ["def fib(n):", "for i in range(10):"], max_tokens=12)
    return config, engine, pool, groups


def test_the_pool_is_the_base_models_greedy_answer_to_the_eval_prompt(parts):
    from inference.sampling import SamplingParams

    _, engine, pool, _ = parts
    assert len(pool) == 4 and len({a.task_id for a in pool}) == 4
    for anchor in pool:
        out = engine.generate([anchor.prompt_ids], SamplingParams(temperature=0.0, max_tokens=8))[0]
        assert anchor.completion_ids == list(out.outputs[0].token_ids) and len(anchor.completion_ids) <= 8
    with pytest.raises(RuntimeError, match="base model"):
        build_pool(SimpleNamespace(adapter_key="step-1@1"), [add_task(0)], 1, 8, 0)


def test_the_pool_is_written_once_and_read_back(tmp_path, parts):
    pool = parts[2]
    calls = []
    first = load_or_build(tmp_path, lambda: calls.append(1) or pool)
    again = load_or_build(tmp_path, lambda: calls.append(1) or [])
    assert first == again == pool and calls == [1]
    with pytest.raises(ValueError, match="empty"):
        load_or_build(tmp_path / "other", lambda: [])


def test_a_steps_anchors_are_fixed_by_seed_and_step():
    pool = [Anchor(f"t{i}", [1, 2], [3 + i]) for i in range(10)]
    assert for_step(pool, 3, seed=1, step=4) == for_step(pool, 3, seed=1, step=4)
    assert len(set(a.task_id for a in for_step(pool, 3, 1, 4))) == 3
    assert any(for_step(pool, 3, 1, s) != for_step(pool, 3, 1, 4) for s in range(5, 9))
    assert for_step(pool, 0, 1, 4) == [] and for_step([], 3, 1, 4) == []
    assert len(for_step(pool[:2], 3, 1, 1)) == 2


def greedy_agreement(trainer, pool) -> float:
    """Fraction of the answers' tokens that are still the model's argmax (the base's greedy choices)."""
    with torch.no_grad():
        logits = trainer.completion_logits(pool)
    hits = sum(int((x.argmax(-1) == torch.tensor(a.completion_ids)).sum()) for x, a in zip(logits, pool, strict=True))
    return hits / sum(len(a.completion_ids) for a in pool)


@pytest.mark.parametrize("loss", ["kl", "nll"])
def test_the_anchor_holds_a_drifting_adapter_back(tiny_qwen2_dir, parts, loss):
    config, _, pool, groups = parts
    config = replace(config, anchor=replace(config.anchor, loss=loss))
    kl, agree = {}, {}
    for name, anchors in (("plain", ()), ("anchored", pool)):
        torch.manual_seed(0)
        trainer = Trainer(config, tiny_qwen2_dir)
        with torch.no_grad():
            at_base, tokens = trainer.anchor_kl(pool)
        assert abs(float(at_base)) < 1e-5 and tokens == sum(len(a.completion_ids) for a in pool)
        assert greedy_agreement(trainer, pool) == 1.0  # the pool is the base's greedy answers
        for _ in range(4):
            metrics = trainer.step(groups, anchors)
        assert metrics["skipped_update"] == 0.0
        assert (f"anchor_{loss}" in metrics) == bool(anchors)
        with torch.no_grad():
            kl[name] = float(trainer.anchor_kl(pool)[0]) / tokens
        agree[name] = greedy_agreement(trainer, pool)
    assert kl["plain"] > 1e-3 and agree["plain"] < 0.9  # the repository's updates move the general answers...
    if loss == "kl":  # ...the KL holds most of the distribution back
        assert kl["anchored"] < 0.5 * kl["plain"]
    else:  # ...the NLL holds the greedy choices (sharpening them: the distribution may move further)
        assert agree["anchored"] > agree["plain"] + 0.1


def test_anchors_regularise_an_update_but_never_make_one(tiny_qwen2_dir, parts):
    config, _, pool, groups = parts
    failed = [[replace(r, status="failed", reward=0.0) for r in g] for g in groups]
    metrics = Trainer(config, tiny_qwen2_dir).step(failed, pool)
    assert metrics["skipped_update"] == 1.0 and "anchor_kl" not in metrics


def test_the_phase_hands_each_step_its_anchors(tiny_qwen2_dir, parts, tmp_path):
    from rl.rollout import RolloutBatch

    config, engine, pool, groups = parts
    config = replace(config, run_dir=str(tmp_path))
    source = SimpleNamespace(
        load=lambda record: None,  # never called: the phase is given its tasks
        collect=lambda *a, **k: RolloutBatch([r for g in groups for r in g], 1, 1.0, 1.0, 1))
    phase = Phase(config, engine, Trainer(config, tiny_qwen2_dir), [add_task(0), add_task(1)], source=source,
                  anchors=pool)
    record = phase.one_step()
    chosen = for_step(pool, config.anchor.per_step, config.seed, 1)
    assert record["anchor_tokens"] == sum(len(a.completion_ids) for a in chosen) and record["anchor_kl"] >= 0
    engine.set_adapter(None)


def test_anchor_settings_are_checked(tiny_qwen2_dir, tmp_path):
    data = tiny_config(tiny_qwen2_dir, tmp_path).as_dict()
    for bad, message in (({"per_step": 8, "pool": 4}, "anchor.pool"), ({"coef": -1.0}, "anchor.coef"),
                         ({"per_step": -1}, "anchor.per_step"), ({"size": 3}, "unknown key"),
                         ({"loss": "l2"}, "anchor.loss"), ({"prompts": ["humaneval"]}, "anchor.prompts"),
                         ({"prompts": []}, "anchor.prompts")):
        with pytest.raises(ConfigError, match=message):
            config_from_dict({**data, "anchor": {**data["anchor"], **bad}})


def test_a_signature_prompt_is_the_task_laid_out_as_humaneval_lays_out_its_prompts():
    task = replace(add_task(3), reference="import math\n\ndef add3(x: int, y=0) -> int:\n    return x + 3\n",
                   tests=("assert add3(1) == 4", "assert add3(2) == 5"))
    sig = signature_task(task)
    assert sig.task_id == "t/3/signature" and sig.tests == task.tests and sig.reference == task.reference
    assert sig.instruction == ('import math\n\n\ndef add3(x: int, y=0) -> int:\n    """Add 3 to x.\n\n'
                               '    >>> add3(1)\n    4\n    """\n')
    compile(sig.instruction + "    pass\n", "sig", "exec")
    other = signature_task(replace(task, tests=("assert set(add3(1)) == {4} or True",)))
    assert ">>> set(add3(1)) == {4} or True\n    True" in other.instruction
    assert signature_task(replace(task, reference="class add3:\n    pass\n")) is None
    assert signature_task(replace(task, reference="def (:")) is None


def test_the_pool_takes_the_prompt_kinds_in_turn(parts):
    _, engine, _, _ = parts
    tasks = [add_task(i) for i in range(6)] + [replace(add_task(9), reference="class add9:\n    pass\n")]
    pool = build_pool(engine, tasks, size=7, max_tokens=4, seed=3, kinds=("mbpp", "signature"))
    ids = [a.task_id for a in pool]
    assert len(ids) == 7 and sum(i.endswith("/signature") for i in ids) in (3, 2)  # add9 keeps its mbpp form
    signature = build_pool(engine, tasks[:2], size=2, max_tokens=4, seed=3, kinds=("signature",))
    assert all(a.task_id.endswith("/signature") for a in signature)
