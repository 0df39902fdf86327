"""Rollouts: G samples per task from our engine (sharing the prompt's KV), judged in the sandbox.

The prompt is the evals' chat prompt (``evals.prompts.build_prompt``), so what is trained is what is measured.
Every sample of a group comes from one request (``SamplingParams(n=G)``) under the engine's active adapter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from evals.prompts import PromptMode, assemble_program, build_prompt
from evals.task import Task
from rl.config import RolloutSettings
from rl.execution import run_with_retry
from rl.rewards import RewardSpec
from rl.tasks import RLTask
from sandbox.types import Limits, RunStatus

log = logging.getLogger(__name__)


@dataclass
class Rollout:
    """One sample. ``skipped``: the sandbox could not judge it (twice), so it carries no reward signal."""

    task_id: str
    sample_index: int
    prompt_token_ids: list[int]
    completion_token_ids: list[int]
    completion: str
    code: str | None
    reward: float
    parts: dict[str, float]
    status: str
    fraction_passed: float
    adapter_key: str | None
    engine_logprobs: list[float] | None = None
    skipped: bool = False
    tamper_rules: list[str] = field(default_factory=list)
    """Rules of the static tamper scan the code set off (security.tamper); the reward is the harness's verdict."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RolloutBatch:
    rollouts: list[Rollout]
    num_generated_tokens: int
    generation_seconds: float
    execution_seconds: float
    num_sandbox_runs: int
    skipped_groups: list[str] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.num_generated_tokens / self.generation_seconds if self.generation_seconds else 0.0

    @property
    def pass_rate(self) -> float:
        """Fraction of the samples that passed every assert."""
        return sum(r.status == "passed" for r in self.rollouts) / max(1, len(self.rollouts))

    @property
    def tamper_flagged(self) -> int:
        """Samples whose code reaches for the checker (gc, frames, builtins, patched modules...)."""
        return sum(bool(r.tamper_rules) for r in self.rollouts)

    @property
    def sandbox_runs_per_s(self) -> float:
        return self.num_sandbox_runs / self.execution_seconds if self.execution_seconds else 0.0

    def merged(self, other: RolloutBatch) -> RolloutBatch:
        """This batch and ``other`` (more prompts of the same step) as one."""
        return RolloutBatch(self.rollouts + other.rollouts, self.num_generated_tokens + other.num_generated_tokens,
                            self.generation_seconds + other.generation_seconds,
                            self.execution_seconds + other.execution_seconds,
                            self.num_sandbox_runs + other.num_sandbox_runs,
                            sorted({*self.skipped_groups, *other.skipped_groups}))

    def num_teaching(self, group_size: int, algo: str) -> int:
        """Complete groups that can move the policy: RFT trains on passing samples, GRPO on rewards that
        differ within the group (equal rewards give zero advantages)."""
        if algo == "rft":
            return sum(any(r.status == "passed" for r in g) for g in self.groups(group_size))
        return sum(len({r.reward for r in g}) > 1 for g in self.groups(group_size))

    def groups(self, group_size: int) -> list[list[Rollout]]:
        """Complete groups with no skipped sample (advantages need the whole group)."""
        by_task: dict[str, list[Rollout]] = {}
        for r in self.rollouts:
            by_task.setdefault(r.task_id, []).append(r)
        return [g for g in by_task.values() if len(g) == group_size and not any(r.skipped for r in g)]


def eval_task(task: RLTask) -> Task:
    """The evals' view of a task: prompt building and code assembly are shared with the benchmarks."""
    return Task(task_id=task.task_id, benchmark="rl", prompt=task.instruction, entry_point=task.entry_point,
                tests=("\n".join(task.tests),), canonical_solution=task.reference)


def chat_requests(engine: Any, tasks: Sequence[RLTask], settings: RolloutSettings, seed: int) -> list[tuple]:
    """(task, prompt ids, SamplingParams) per task: the evals' chat prompt, n=G samples with logprobs."""
    from inference.sampling import SamplingParams

    out = []
    for i, task in enumerate(tasks):
        prompt = build_prompt(eval_task(task), PromptMode.CHAT, engine.tokenizer)
        params = SamplingParams(n=settings.group_size, temperature=settings.temperature, top_p=settings.top_p,
                                max_tokens=settings.max_tokens, stop=list(prompt.stop), seed=seed * 100_003 + i,
                                logprobs=True)
        out.append((task, list(engine.tokenizer.encode(prompt.text)), params))
    return out


def generate_groups(engine: Any, tasks: Sequence[RLTask], settings: RolloutSettings, seed: int) -> tuple[list, float]:
    """(list of (task, prompt_ids, RequestOutput), seconds): one n=G chat request per task."""
    return run_requests(engine, chat_requests(engine, tasks, settings, seed), seed)


def run_requests(engine: Any, requests: Sequence[tuple[Any, list[int], Any]], seed: int) -> tuple[list, float]:
    """(list of (task, prompt_ids, RequestOutput), seconds) for (task, prompt ids, SamplingParams) requests:
    one n=G request per task under the engine's active adapter, all in flight at once."""
    from inference.request import Priority

    start = time.perf_counter()
    pending = {}
    for i, (task, ids, params) in enumerate(requests):
        try:
            rid = engine.add_request(ids, params, priority=Priority.BATCH, adapter_id=engine.adapter_key,
                                     request_id=f"rollout-{seed}-{i}")
        except ValueError as exc:  # e.g. a prompt longer than the context: skip the task, keep the batch
            log.warning("task %s skipped: engine refused its prompt: %s", task.task_id, exc)
            continue
        pending[rid] = (task, ids)
    done = {}
    while len(done) < len(pending):
        for out in engine.step():
            if out.finished and out.request_id in pending:
                done[out.request_id] = out
    return [(*pending[rid], done[rid]) for rid in pending], time.perf_counter() - start


def collect(engine: Any, tasks: Sequence[RLTask], settings: RolloutSettings, reward_spec: RewardSpec,
            seed: int, run_many=None) -> RolloutBatch:
    """Generate, extract code, run it against each task's asserts (retry once on sandbox failure), score.
    The ``collect`` of the chat task sources (MBPP, synthetic, accepted suggestions)."""
    generated, gen_s = generate_groups(engine, tasks, settings, seed)
    limits = Limits(timeout_s=settings.timeout_s, memory_mb=settings.memory_mb)
    samples, jobs = [], []
    for task, prompt_ids, out in generated:
        for sample in out.outputs:
            program = assemble_program(eval_task(task), PromptMode.CHAT, sample.text)
            samples.append((task, prompt_ids, sample, program or None))
            if program:
                jobs.append((task.program(program), list(task.tests), limits))
    t0 = time.perf_counter()
    results = iter(run_with_retry(jobs, concurrency=settings.concurrency, backend=settings.sandbox, run_many=run_many))
    exec_s = time.perf_counter() - t0
    from security.tamper import tamper_signs  # the security package loads bandit: only when needed

    rollouts = []
    for task, prompt_ids, sample, code in samples:
        result = next(results) if code else None
        skipped = result is not None and result.status is RunStatus.SANDBOX_ERROR
        reward, parts = reward_spec(sample.text, code, None if skipped else result)
        rollouts.append(Rollout(
            task_id=task.task_id, sample_index=sample.index, prompt_token_ids=prompt_ids,
            completion_token_ids=list(sample.token_ids), completion=sample.text, code=code, reward=reward,
            parts=parts, status=result.status.value if result else "no_code",
            fraction_passed=result.fraction_passed if result and not skipped else 0.0,
            adapter_key=engine.adapter_key, engine_logprobs=sample.logprobs, skipped=skipped,
            tamper_rules=sorted({s.rule for s in tamper_signs(code)}) if code else []))
    num_tokens = sum(len(r.completion_token_ids) for r in rollouts)
    skipped_groups = sorted({r.task_id for r in rollouts if r.skipped})
    return RolloutBatch(rollouts, num_tokens, gen_s, exec_s, len(jobs), skipped_groups)


class TaskSource(Protocol):
    """What a training phase needs of its tasks: how to read one back from ``tasks.jsonl`` and how to turn a
    batch of them into judged rollouts. Chat sources: ``ChatSource``; the user's repository: rl/repo_source.py."""

    def load(self, record: dict[str, Any]) -> Any: ...

    def collect(self, engine: Any, tasks: Sequence[Any], settings: RolloutSettings, reward_spec: RewardSpec,
                seed: int, run_many=None) -> RolloutBatch: ...


class ChatSource:
    """Tasks with asserts (``RLTask``), prompted as chat (the evals' prompt), rewarded by ``reward_spec``."""

    def load(self, record: dict[str, Any]) -> RLTask:
        return RLTask.from_dict(record)

    def collect(self, engine: Any, tasks: Sequence[RLTask], settings: RolloutSettings, reward_spec: RewardSpec,
                seed: int, run_many=None) -> RolloutBatch:
        return collect(engine, tasks, settings, reward_spec, seed, run_many)
