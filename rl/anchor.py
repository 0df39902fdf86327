"""The general-skill anchor: the base model's own greedy answers to general coding prompts, distilled back into
the adapter at every training step, so an adapter learns one repository without forgetting the rest.

Why: one repository iteration of LoRA RFT moved HumanEval+ / MBPP+ by -1.2 / -1.6 points on marshmallow
(docs/BENCHMARKS.md, issue 15). The anchor's loss (``Trainer``) is the full-vocabulary KL from the base's
next-token distribution to the adapter's, at each token of the base's answers: zero, with a zero gradient, at
the base, so it pulls back only what the repository's updates moved, and it cannot teach the general tasks
(the answers are the base's own, passing or not, and their prompts are decontaminated against every eval set).

Run directory: ``anchor.jsonl`` holds the pool (written once, from the base model, before any adapter is set);
a resumed run reads it back, and each step's anchors are a pure function of (seed, step).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evals.jsonl import read_jsonl, write_jsonl_atomic

log = logging.getLogger(__name__)
POOL_FILE = "anchor.jsonl"


@dataclass(frozen=True)
class Anchor:
    """One general prompt and the base model's greedy answer to it, as token ids."""

    task_id: str
    prompt_ids: list[int]
    completion_ids: list[int]


def build_pool(engine: Any, tasks: Sequence[Any], size: int, max_tokens: int, seed: int) -> list[Anchor]:
    """Greedy answers of ``engine``'s base model (no adapter may be set) to ``size`` of ``tasks`` (chat tasks,
    ``rl.tasks.RLTask``), prompted exactly as the evals and the chat rollouts prompt them."""
    from evals.prompts import PromptMode, build_prompt
    from inference.sampling import SamplingParams
    from rl.rollout import eval_task, run_requests

    if engine.adapter_key is not None:
        raise RuntimeError(f"the anchor pool is the base model's answers, but adapter {engine.adapter_key} is set")
    chosen = random.Random(seed).sample(list(tasks), min(size, len(tasks)))
    requests = []
    for task in chosen:
        prompt = build_prompt(eval_task(task), PromptMode.CHAT, engine.tokenizer)
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=list(prompt.stop))
        requests.append((task, list(engine.tokenizer.encode(prompt.text)), params))
    generated, seconds = run_requests(engine, requests, seed)
    pool = [Anchor(task.task_id, ids, list(out.outputs[0].token_ids))
            for task, ids, out in generated if out.outputs[0].token_ids]
    log.info("anchor pool: %d base answers to general prompts in %.1f s", len(pool), seconds)
    return pool


def load_or_build(run_dir: Path, build: Any) -> list[Anchor]:
    """The run's pool: ``run_dir/anchor.jsonl`` read back, or ``build()`` written there first."""
    path = Path(run_dir) / POOL_FILE
    if path.is_file():
        return [Anchor(**d) for d in read_jsonl(path)]
    pool = build()
    if not pool:
        raise ValueError("the anchor pool is empty: no general prompt got an answer from the base model")
    write_jsonl_atomic(path, [asdict(a) for a in pool])
    return pool


def for_step(pool: Sequence[Anchor], per_step: int, seed: int, step: int) -> list[Anchor]:
    """The anchors of training step ``step``: the same ones after a resume (a function of seed and step)."""
    if not per_step or not pool:
        return []
    return random.Random(seed * 1_000_033 + step).sample(list(pool), min(per_step, len(pool)))
