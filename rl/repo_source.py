"""Task source ``repo``: the user's repository as RL tasks, prompted and judged as the editor and
``codeloop eval fim`` prompt and judge them.

- Tasks: the ``train`` split of a ``codeloop tasks mine`` file (``FimTask``); the ``heldout`` split (other
  files: no file is in both) is what ``codeloop loop --repo`` evaluates and promotes on.
- Prompt: the editor's own context for the task's cursor (``evals.repo.completions.editor_context``:
  lsp/context.py with snippets from the same repository, shrunk to the engine's context as the editor's
  in-process client shrinks it), with the settings of the held-out eval. G samples per prompt, one request,
  healed as the editor heals it (spm prompts end where the user types: the engine takes the last token back
  and each sample writes it again, so the policy trains on the prompt without it and samples starting with it).
- Each sample is cut where the editor stops streaming (``lsp.postprocess.should_stop``; the editor never
  generates the tokens after that point, so they are not trained either) and cleaned as the editor cleans it
  (``lsp.postprocess.finish``).
- Reward (``repo_reward``): eval fim's per-task score (``evals.repo.fim.score_task``: the completion spliced
  into a copy of its file, the task's covering tests run in the sandbox) gives the fraction of the tests
  passing; + ``tasks.repo_similarity_weight`` (0.01) x edit similarity to the mined span, a tie-breaker
  between samples with the same test result (it is below one test's share of a task: at most 8 tests, 0.125).
  A sample the sandbox could not run (twice) is skipped: it carries no reward.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from evals.repo.completions import Workspace, editor_context
from evals.repo.fim import lsp_settings, score_task
from evals.repo.target import RepoTarget, resolve_target
from evals.repo.task import FimTask, read_tasks
from evals.results import judged
from lsp.context import CompletionContext, ContextTooSmall, Mode
from lsp.postprocess import finish, should_stop
from rl.config import RLConfig, RolloutSettings
from rl.rewards import RewardSpec
from rl.rollout import Rollout, RolloutBatch, run_requests
from sandbox.types import RunStatus

log = logging.getLogger(__name__)


def train_tasks(config: RLConfig) -> list[FimTask]:
    """The ``train`` split of ``tasks.repo_tasks`` (at most ``tasks.limit``, in seeded-shuffled order)."""
    tasks = read_tasks(Path(str(config.tasks.repo_tasks)), split="train")
    if config.tasks.limit:
        random.Random(config.seed).shuffle(tasks)
        tasks = tasks[: config.tasks.limit]
    return tasks


def repo_reward(record: dict[str, Any], similarity_weight: float) -> tuple[float, dict[str, float]]:
    """(reward, parts) of eval fim's record of one completion: tests fraction + weight x edit similarity."""
    parts = {"tests_fraction": float(record.get("tests_fraction", 0.0)),
             "edit_similarity": float(record["edit_similarity"])}
    return parts["tests_fraction"] + similarity_weight * parts["edit_similarity"], parts


def editor_cut(tokenizer: Any, token_ids: Sequence[int], ctx: CompletionContext, max_lines: int,
               healed: str = "") -> list[int]:
    """The tokens the editor receives: it stops streaming after the first token (one per engine step) at
    which ``should_stop`` holds for the text so far (after ``healed``, the prompt's end written again)."""
    for k in range(1, len(token_ids) + 1):
        if should_stop(shown(tokenizer, token_ids[:k], healed), ctx, max_lines):
            return list(token_ids[:k])
    return list(token_ids)


def shown(tokenizer: Any, token_ids: Sequence[int], healed: str = "") -> str:
    """The text the editor gets for generated ``token_ids``: without the taken-back text they rewrite first."""
    return tokenizer.decode(list(token_ids), skip_special_tokens=True)[len(healed):]


class EngineBudget:
    """``count_tokens`` / ``max_prompt_tokens`` of a local ``Engine``, as the editor's in-process client
    answers them: the context builder shrinks a prompt until it fits."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def count_tokens(self, text: str) -> int:
        return len(self.engine.tokenizer.encode(text))

    def max_prompt_tokens(self, max_tokens: int) -> int:
        return self.engine.max_model_len - max_tokens


class RepoSource:
    """``FimTask``s as rollouts (see the module docstring). Repositories and their snippet indexes are
    resolved once per task source and kept."""

    def __init__(self, config: RLConfig) -> None:
        self.settings = lsp_settings(config.tasks.repo_settings)
        self.similarity_weight = config.tasks.repo_similarity_weight
        self.concurrency = config.rollout.concurrency
        self.swebench_dir = Path(config.eval.swebench_dir) if config.eval.swebench_dir else None
        self._targets: dict[str, RepoTarget] = {}
        self._workspaces: dict[str, Workspace] = {}

    def load(self, record: dict[str, Any]) -> FimTask:
        return FimTask.from_dict(record)

    def target(self, task: FimTask) -> RepoTarget:
        if task.source not in self._targets:
            self._targets[task.source] = resolve_target(task.source, swebench_dir=self.swebench_dir)
        return self._targets[task.source]

    def context(self, task: FimTask, engine: Any) -> CompletionContext:
        """The editor's context (prompt, snippets, mode) for the task's cursor, fitted to ``engine``."""
        if task.source not in self._workspaces:
            self._workspaces[task.source] = Workspace(self.target(task).root)
        return editor_context(task, self._workspaces[task.source], self.settings, EngineBudget(engine))

    def params(self, ctx: CompletionContext, settings: RolloutSettings, seed: int) -> Any:
        """G samples with the editor's token limit for the mode (the rollout temperature explores)."""
        from inference.sampling import SamplingParams

        s = self.settings
        max_tokens = s.max_tokens_multiline if ctx.mode is Mode.MULTI_LINE else s.max_tokens
        return SamplingParams(n=settings.group_size, temperature=settings.temperature, top_p=settings.top_p,
                              max_tokens=max_tokens, seed=seed, logprobs=True, heal=self.settings.heals)

    def collect(self, engine: Any, tasks: Sequence[FimTask], settings: RolloutSettings, reward_spec: RewardSpec,
                seed: int, run_many: Any = None) -> RolloutBatch:
        """Generate G editor completions per task, run each distinct one against the task's tests, score.
        ``reward_spec`` and ``run_many`` (the chat sources' reward and sandbox) are not used here."""
        requests, contexts = [], {}
        for i, task in enumerate(tasks):
            try:
                ctx = self.context(task, engine)
            except ContextTooSmall as exc:
                log.warning("task %s skipped: %s", task.task_id, exc)
                continue
            contexts[task.task_id] = ctx
            ids = list(engine.tokenizer.encode(ctx.prompt))
            requests.append((task, ids, self.params(ctx, settings, seed * 100_003 + i)))
        generated, gen_s = run_requests(engine, requests, seed)
        samples = []
        for task, sent_ids, out in generated:
            ctx = contexts[task.task_id]
            # healed: the engine continued the prompt without its last token, which each sample writes again
            prompt_ids, healed = sent_ids[:out.num_prompt_tokens], out.healed
            for sample in out.outputs:
                ids = editor_cut(engine.tokenizer, sample.token_ids, ctx, self.settings.max_lines, healed)
                text = finish(shown(engine.tokenizer, ids, healed), ctx, self.settings.max_lines)
                logprobs = sample.logprobs[: len(ids)] if sample.logprobs is not None else None
                samples.append((task, prompt_ids, sample.index, ids, text, logprobs))
        start = time.perf_counter()
        records = self.check_all([(task, text) for task, _, _, _, text, _ in samples])
        exec_s = time.perf_counter() - start
        rollouts = [self._rollout(engine, task, prompt_ids, index, ids, text, logprobs, records[task.task_id, text])
                    for task, prompt_ids, index, ids, text, logprobs in samples]
        num_tokens = sum(len(r.completion_token_ids) for r in rollouts)
        skipped = sorted({r.task_id for r in rollouts if r.skipped})
        return RolloutBatch(rollouts, num_tokens, gen_s, exec_s, len(records), skipped)

    def check_all(self, items: Sequence[tuple[FimTask, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """eval fim's record of every distinct (task, completion), checked ``rollout.concurrency`` at a time;
        a check the sandbox could not run is retried once."""
        unique = {(task.task_id, text): (task, text) for task, text in items}

        def one(item: tuple[FimTask, str]) -> dict[str, Any]:
            task, text = item
            record = score_task(task, {"completion": text}, self.target(task), checks=True)
            if not judged(record):
                log.warning("sandbox failed on %s; retrying once: %s", task.task_id, record["check"]["message"])
                record = score_task(task, {"completion": text}, self.target(task), checks=True)
            return record

        with ThreadPoolExecutor(max(1, self.concurrency)) as pool:
            return dict(zip(unique, pool.map(one, unique.values()), strict=True))

    def _rollout(self, engine: Any, task: FimTask, prompt_ids: list[int], index: int, ids: list[int], text: str,
                 logprobs: list[float] | None, record: dict[str, Any]) -> Rollout:
        skipped = not judged(record)
        reward, parts = (0.0, {}) if skipped else repo_reward(record, self.similarity_weight)
        status = RunStatus.SANDBOX_ERROR.value if skipped else record["check"]["status"]
        return Rollout(task_id=task.task_id, sample_index=index, prompt_token_ids=prompt_ids,
                       completion_token_ids=ids, completion=text, code=text, reward=reward, parts=parts,
                       status=status, fraction_passed=0.0 if skipped else parts["tests_fraction"],
                       adapter_key=engine.adapter_key, engine_logprobs=logprobs, skipped=skipped)

