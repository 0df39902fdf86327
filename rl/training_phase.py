"""A training phase: rollouts → update → checkpoint → push the adapter to the engine, resumable.

Run directory (``RLConfig.run_dir``)::

    tasks.jsonl            the task set of the run (written once; a resumed run reads it back)
    metrics.jsonl          one line per finished step (rewritten from the checkpoint on resume)
    rollouts/step-N.jsonl  every sample of step N (reward, parts, status, completion)
    checkpoints/           see rl/checkpoint.py

Invariant: after a kill at any point and a resume, the steps run, their task order (seeded shuffles +
cursor) and ``metrics.jsonl`` are those of an uninterrupted run; no step is counted twice.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals.jsonl import append_jsonl, read_jsonl, write_jsonl_atomic
from rl.anchor import Anchor, for_step
from rl.checkpoint import CheckpointManager, DataCursor, TrainState
from rl.config import RLConfig
from rl.rewards import RewardSpec
from rl.rollout import ChatSource, RolloutBatch, TaskSource

log = logging.getLogger(__name__)


class NoTasksError(ValueError):
    """The configured sources gave no usable task."""


MIN_ENGINE_SEQS = 64
"""Held-out evals submit every task at once: on CPU, decode throughput still grows up to ~64 sequences."""


def make_engine(config: RLConfig) -> Any:
    """The rollout / eval engine for ``config`` (one per process)."""
    from inference.config import CacheConfig, EngineConfig
    from inference.engine import Engine

    cache = CacheConfig(kv_cache_bytes=config.kv_cache_mb << 20)
    seqs = max(MIN_ENGINE_SEQS, config.rollout.group_size * config.rollout.prompts_per_step)
    return Engine(EngineConfig(model=config.model, dtype=config.engine_dtype, max_model_len=config.max_model_len,
                               max_num_seqs=seqs, num_threads=config.train.num_threads, cache=cache, seed=config.seed))


def step_metrics(step: int, batch: RolloutBatch, update: dict[str, float], group_size: int,
                 wall_s: float) -> dict[str, Any]:
    rewards = [r.reward for r in batch.rollouts if not r.skipped]
    return {
        "step": step, "reward_mean": statistics.fmean(rewards) if rewards else 0.0,
        "reward_std": statistics.pstdev(rewards) if rewards else 0.0,
        "pass_rate": batch.pass_rate,
        "fraction_passed_mean": statistics.fmean(r.fraction_passed for r in batch.rollouts) if batch.rollouts else 0.0,
        "no_code_rate": sum(r.code is None for r in batch.rollouts) / max(1, len(batch.rollouts)),
        "tamper_flagged": batch.tamper_flagged,
        "tamper_rules": dict(Counter(rule for r in batch.rollouts for rule in r.tamper_rules)),
        "num_groups": len(batch.groups(group_size)), "skipped_groups": batch.skipped_groups,
        "rollout_tokens": batch.num_generated_tokens, "rollout_tokens_per_s": round(batch.tokens_per_s, 2),
        "sandbox_runs": batch.num_sandbox_runs, "sandbox_runs_per_s": round(batch.sandbox_runs_per_s, 2),
        "loss": update.get("loss", 0.0), "kl": update.get("kl", 0.0), "clip_fraction": update.get("clip_fraction", 0.0),
        **{k: v for k, v in update.items() if k not in ("loss", "kl", "clip_fraction")},
        "task_ids": sorted({r.task_id for r in batch.rollouts}),
        "wall_s": round(wall_s, 2), "time": time.time(),
    }


class Phase:
    """Owns the trainer, the checkpoints and the data cursor of one run directory."""

    def __init__(self, config: RLConfig, engine: Any, trainer: Any, tasks: Sequence[Any],
                 reward_spec: RewardSpec | None = None, run_many: Callable | None = None,
                 source: TaskSource | None = None, anchors: Sequence[Anchor] = ()) -> None:
        self.config, self.engine, self.trainer = config, engine, trainer
        self.anchors = list(anchors)
        """The general-skill anchor's pool (rl/anchor.py); ``anchor.per_step`` of it join each step's update."""
        self.source = source or ChatSource()
        """Reads tasks back and turns them into judged rollouts (chat tasks, or the user's repository)."""
        self.run_dir = Path(config.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.tasks = self._task_set(tasks)
        self.reward_spec = reward_spec or RewardSpec()
        self.run_many = run_many
        self.checkpoints = CheckpointManager(self.run_dir, keep=config.train.keep_checkpoints)
        self.state = TrainState(0, DataCursor(config.seed))
        self.metrics_path = self.run_dir / "metrics.jsonl"

    def _task_set(self, tasks: Sequence[Any]) -> list[Any]:
        path = self.run_dir / "tasks.jsonl"
        if path.is_file():
            return [self.source.load(d) for d in read_jsonl(path)]
        if not tasks:
            raise NoTasksError("no training tasks: every source was empty or filtered out (see the log)")
        write_jsonl_atomic(path, [t.as_dict() for t in tasks])
        return list(tasks)

    def add_tasks(self, tasks: Sequence[Any]) -> int:
        """Append tasks with new ids to the task set (and tasks.jsonl); returns how many were new.

        NOTE: the cursor's epoch order depends on the number of tasks, so adding tasks re-shuffles the rest
        of the current epoch; it is still a pure function of (seed, cursor, task set), hence resumable.
        """
        known = {t.task_id for t in self.tasks}
        new = [t for t in tasks if t.task_id not in known]
        if new:
            self.tasks += new
            write_jsonl_atomic(self.run_dir / "tasks.jsonl", [t.as_dict() for t in self.tasks])
        return len(new)

    def resume(self) -> bool:
        """Restore the newest complete checkpoint (adapter pushed to the engine); False when none exists."""
        latest = self.checkpoints.latest()
        if latest is None:
            write_jsonl_atomic(self.metrics_path, [])
            return False
        self.state, _ = self.checkpoints.load(latest, self.trainer.load_adapter, self.trainer.optimizer)
        write_jsonl_atomic(self.metrics_path, self.state.history)
        self.engine.set_adapter(latest / "adapter", name=latest.name)
        log.info("resumed from %s (step %d)", latest, self.state.step)
        return True

    def run(self, until_step: int, on_step: Callable[[dict], None] | None = None) -> None:
        """Train until ``state.step == until_step``."""
        while self.state.step < until_step:
            record = self.one_step()
            if on_step is not None:
                on_step(record)

    def one_step(self) -> dict[str, Any]:
        start = time.perf_counter()
        step = self.state.step + 1
        batch_tasks, batch = self._rollouts(step)
        self._write_rollouts(step, batch)
        anchors = for_step(self.anchors, self.config.anchor.per_step, self.config.seed, step)
        update = self.trainer.step(batch.groups(self.config.rollout.group_size), anchors)
        record = step_metrics(step, batch, update, self.config.rollout.group_size, time.perf_counter() - start)
        record["task_order"] = [t.task_id for t in batch_tasks]
        record["refilled_prompts"] = max(0, len(batch_tasks) - self.config.rollout.prompts_per_step)
        self.state.step = step
        self.state.history.append(record)
        self._publish(step)
        append_jsonl(self.metrics_path, record)
        return record

    def _rollouts(self, step: int) -> tuple[list[Any], RolloutBatch]:
        """The step's prompts and their rollouts; with ``rollout.refill_prompts``, more prompts (the cursor's
        next, never one already in the step) while fewer than ``prompts_per_step`` groups teach anything."""
        r = self.config.rollout
        tasks: list[Any] = []
        batch: RolloutBatch | None = None
        want, refills = r.prompts_per_step, 0
        for round_ in range(1 + r.refill_prompts):
            taken = {t.task_id for t in tasks}
            new = [t for t in (self.tasks[i] for i in self.state.cursor.take(len(self.tasks), want))
                   if t.task_id not in taken]
            if not new:
                break
            more = self.source.collect(self.engine, new, r, self.reward_spec, run_many=self.run_many,
                                       seed=self.config.seed * 1_000_003 + step + 7_919 * round_)
            tasks, batch = tasks + new, more if batch is None else batch.merged(more)
            refills += len(new) if round_ else 0
            useful = batch.num_teaching(r.group_size, self.config.train.algo)
            want = min(r.prompts_per_step - useful, r.refill_prompts - refills)
            if want <= 0:
                break
        assert batch is not None
        return tasks, batch

    def _publish(self, step: int) -> None:
        """Checkpoint (or save the live adapter) and make the engine generate with the updated adapter."""
        train = self.config.train
        if step % train.checkpoint_every == 0:
            folder = self.checkpoints.save(self.state, self.trainer.save_adapter, self.trainer.optimizer,
                                           {"config": self.config.as_dict()})
            adapter = folder / "adapter"
        else:
            adapter = self.run_dir / "live-adapter"
            self.trainer.save_adapter(adapter)
        self.engine.set_adapter(adapter, name=f"step-{step:06d}")

    def _write_rollouts(self, step: int, batch: RolloutBatch) -> None:
        folder = self.run_dir / "rollouts"
        folder.mkdir(exist_ok=True)
        keep = ("task_id", "sample_index", "reward", "parts", "status", "fraction_passed", "completion", "skipped")
        records = [{k: r.as_dict()[k] for k in keep} | {"num_tokens": len(r.completion_token_ids)}
                   for r in batch.rollouts]
        write_jsonl_atomic(folder / f"step-{step:06d}.jsonl", records)
