"""The general-skill anchor: the base model's own greedy answers to general coding prompts, distilled back into
the adapter at every training step, so an adapter learns one repository without forgetting the rest.

Why: one repository iteration of LoRA RFT moved HumanEval+ / MBPP+ by -1.2 / -1.6 points on marshmallow
(docs/BENCHMARKS.md, issue 15). The anchor's loss (``Trainer``) is the full-vocabulary KL from the base's
next-token distribution to the adapter's, at each token of the base's answers: zero, with a zero gradient, at
the base, so it pulls back only what the repository's updates moved, and it cannot teach the general tasks
(the answers are the base's own, passing or not, and their prompts are decontaminated against every eval set).

Prompt kinds (``anchor.prompts``): ``mbpp``, the task as the MBPP/MBPP+ evals prompt it (problem text and one
example assert); ``signature``, the same task laid out as HumanEval prompts a model (the reference's imports and
signature, the problem text and one doctest example in the docstring), so both kinds of general request hold.
The pool's tasks take the kinds in turn.

Run directory: ``anchor.jsonl`` holds the pool (written once, from the base model, before any adapter is set);
a resumed run reads it back, and each step's anchors are a pure function of (seed, step).
"""

from __future__ import annotations

import ast
import dataclasses
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


def signature_task(task: Any) -> Any | None:
    """``task`` (``rl.tasks.RLTask``) laid out as a HumanEval prompt: imports, the reference's signature and a
    docstring with the problem text and its first assert as a doctest; None when the entry point is no
    function of the reference."""
    from rl.tasks import entry_header

    found = entry_header(task.reference, task.entry_point)
    if found is None or not found[1].startswith("def "):
        return None
    imports, header = found
    text = task.instruction.split('"""')[1] if task.instruction.count('"""') >= 2 else task.instruction
    lines = [line for line in text.strip().splitlines() if not line.lstrip().startswith("assert ")]
    doc = [*lines, *(_doctest(task.tests[0]) if task.tests else [])]
    body = "\n".join(f"    {line}".rstrip() for line in doc)
    prompt = "\n".join([*imports, "", "", header, f'    """{body.lstrip()}', '    """', ""]).lstrip("\n")
    return dataclasses.replace(task, task_id=f"{task.task_id}/signature", instruction=prompt)


def _doctest(assertion: str) -> list[str]:
    """``assert f(x) == y`` as ``>>> f(x)`` / ``y``; any other assert as ``>>> <expression>`` / ``True``."""
    try:
        node = ast.parse(assertion.strip()).body[0]
    except (SyntaxError, IndexError):
        return []
    if not isinstance(node, ast.Assert):
        return []
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        return ["", f">>> {ast.unparse(test.left)}", ast.unparse(test.comparators[0])]
    return ["", f">>> {ast.unparse(test)}", "True"]


def build_pool(engine: Any, tasks: Sequence[Any], size: int, max_tokens: int, seed: int,
               kinds: Sequence[str] = ("mbpp",)) -> list[Anchor]:
    """Greedy answers of ``engine``'s base model (no adapter may be set) to ``size`` of ``tasks`` (chat tasks,
    ``rl.tasks.RLTask``), prompted exactly as the evals and the chat rollouts prompt them; the tasks take
    ``kinds`` in turn (a task with no ``signature`` form keeps its ``mbpp`` one)."""
    from evals.prompts import PromptMode, build_prompt
    from inference.sampling import SamplingParams
    from rl.rollout import eval_task, run_requests

    if engine.adapter_key is not None:
        raise RuntimeError(f"the anchor pool is the base model's answers, but adapter {engine.adapter_key} is set")
    chosen = random.Random(seed).sample(list(tasks), min(size, len(tasks)))
    chosen = [(signature_task(t) or t) if kinds[i % len(kinds)] == "signature" else t
              for i, t in enumerate(chosen)]
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
