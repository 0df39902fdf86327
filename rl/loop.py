"""The self-improvement loop: tasks → rollouts → GRPO update → held-out eval → promote the adapter.

Run directory (``RLConfig.run_dir``)::

    config.json                       the config of the run
    decontamination.json              per task source: what decontamination removed and why
    tasks.jsonl, metrics.jsonl,
    rollouts/, checkpoints/           the training phase (rl/training_phase.py); steps continue across iterations
    evals/iter-0000/<benchmark>/      the base model (iteration 0), evals run folders (resumable)
    evals/iter-NNNN/<benchmark>/      after iteration N
    adapters/iter-NNNN/               the adapter evaluated at iteration N (peft folder)
    loop.jsonl                        one line per finished iteration (scores, promoted or not)
    promoted -> adapters/iter-NNNN    symlink: the best adapter so far on MBPP validation

Path convention for serving (``codeloop serve --adapter`` / ``codeloop lsp``): ``<run_dir>/promoted`` is a
symlink to a complete peft adapter folder (``adapter_config.json`` + ``adapter_model.safetensors`` +
``promotion.json``). It is swapped atomically (``os.replace`` of a new symlink), never written in place, so a
watcher polls ``os.path.realpath(<run_dir>/promoted)`` and reloads when the target changes; the target
folder is complete before the swap and never modified afterwards.
Promotion rule: an iteration's adapter is promoted only if its MBPP-validation pass@1 is strictly higher than
the best so far (the base model's to start with), both measured on the tasks the sandbox judged in both runs.
The repository loop (``codeloop loop --repo``, rl/repo_loop.py) runs this same loop with its own held-out
eval (eval fim on the repository's held-out files), promotion rule and task source (rl/repo_source.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from evals.jsonl import read_jsonl, write_jsonl_atomic
from rl.config import RLConfig
from rl.execution import executor_run_many
from rl.filters import FilterReport
from rl.tasks import RLTask, from_mbpp, validate

log = logging.getLogger(__name__)
PROMOTED = "promoted"
DECONTAMINATION = "decontamination.json"


def build_tasks(config: RLConfig, engine: Any = None, report: FilterReport | None = None) -> list[RLTask]:
    """The configured task sources, each decontaminated against every eval set (the removals are recorded in
    ``<run_dir>/decontamination.json``), then validated in the sandbox."""
    from sandbox.types import Limits

    if "repo" in config.tasks.sources:  # mined and gold-checked already; split by file from the held-out set
        from rl.repo_source import train_tasks

        return train_tasks(config)  # type: ignore[return-value]
    tasks: list[RLTask] = []
    for source in config.tasks.sources:
        tasks += clean_source(config, source, source_tasks(config, source, engine, report))
    if config.tasks.limit:
        import random

        random.Random(config.seed).shuffle(tasks)
        tasks = tasks[: 2 * config.tasks.limit] if config.tasks.validate else tasks[: config.tasks.limit]
    if config.tasks.validate:
        limits = Limits(timeout_s=config.rollout.timeout_s, memory_mb=config.rollout.memory_mb)
        tasks = validate(tasks, limits, config.rollout.concurrency, config.rollout.sandbox, report=report,
                         run_many=executor_run_many(config.rollout))
    return tasks[: config.tasks.limit] if config.tasks.limit else tasks


def source_tasks(config: RLConfig, source: str, engine: Any = None, report: FilterReport | None = None) -> list[RLTask]:
    """The raw tasks of one configured source (before decontamination and validation)."""
    if source == "mbpp-train":
        return from_mbpp("train")
    if source == "synth" and engine is not None and config.tasks.synth_count:
        from rl.synth import synthesize

        return synthesize(engine, config.tasks.synth_count, seed=config.seed, report=report)
    if source == "acceptance" and config.tasks.acceptance_log:
        from rl.acceptance import tasks_from_log

        return tasks_from_log(Path(config.tasks.acceptance_log))
    return []


def clean_source(config: RLConfig, source: str, tasks: list[RLTask]) -> list[RLTask]:
    """``tasks`` of ``source`` without those matching an eval item (rl/decontamination.py); the report of the
    removed ones is added to ``<run_dir>/decontamination.json`` (one entry per source, latest wins)."""
    from rl.decontamination import decontaminate, default_index

    kept, report = decontaminate(tasks, source, default_index(config.eval.swebench_dir))
    path = Path(config.run_dir) / DECONTAMINATION
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = [e for e in (json.loads(path.read_text()) if path.is_file() else []) if e["source"] != source]
    path.write_text(json.dumps([*entries, report.as_dict()], indent=1))
    log.info("%s: %d of %d tasks kept after decontamination (%s)", source, report.num_kept, report.num_in,
             report.counts())
    return kept


def open_phase(config: RLConfig, engine: Any = None):
    """Engine, trainer and Phase for ``config`` with the newest checkpoint restored."""
    from inference.catalog import resolve_model_path
    from rl.trainer import Trainer
    from rl.training_phase import Phase, make_engine

    engine = engine or make_engine(config)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.as_dict(), indent=1))
    tasks = [] if (run_dir / "tasks.jsonl").is_file() else build_tasks(config, engine)
    trainer = Trainer(config, resolve_model_path(config.model))
    phase = Phase(config, engine, trainer, tasks, run_many=executor_run_many(config.rollout),
                  source=task_source(config), anchors=anchor_pool(config, engine))
    phase.resume()
    return phase


def anchor_pool(config: RLConfig, engine: Any) -> list[Any]:
    """The general-skill anchor's pool (rl/anchor.py) when ``anchor.per_step`` asks for one: the base model's
    answers to MBPP's train prompts (decontaminated), built once per run directory before any adapter is set."""
    if not config.anchor.per_step:
        return []
    from rl.anchor import build_pool, load_or_build

    settings = config.anchor
    return load_or_build(Path(config.run_dir), lambda: build_pool(
        engine, clean_source(config, "mbpp-train", from_mbpp("train")), settings.pool, settings.max_tokens,
        config.seed, settings.prompts))


def task_source(config: RLConfig) -> Any:
    """How the phase reads its tasks back and rolls them out: the user's repository, or chat tasks."""
    if "repo" in config.tasks.sources:
        from rl.repo_source import RepoSource

        return RepoSource(config)
    from rl.rollout import ChatSource

    return ChatSource()


def train(config: RLConfig, on_step=None) -> dict[str, Any]:
    """One training phase of ``config.train.steps`` steps (resuming a killed run); returns the last metrics."""
    phase = open_phase(config)
    phase.run(config.train.steps, on_step)
    return phase.state.history[-1] if phase.state.history else {}


def run_loop(config: RLConfig, iterations: int, on_event=None, heldout: Any = None) -> list[dict[str, Any]]:
    """``iterations`` × (train ``train.steps`` steps → evaluate → maybe promote); resumable at every stage.
    ``heldout`` evaluates and decides promotion (default ``rl.heldout.BenchmarkHeldOut``; the repository
    loop's is ``rl.repo_loop.RepoHeldOut``)."""
    from rl.heldout import BenchmarkHeldOut

    heldout = heldout or BenchmarkHeldOut(config)
    notify = on_event or (lambda *_: None)
    phase = open_phase(config)
    run_dir = Path(config.run_dir)
    done = read_jsonl(run_dir / "loop.jsonl")
    saved_key = phase.engine.adapter_key
    phase.engine.set_adapter(None)
    base = heldout.evaluate(phase.engine, run_dir / "evals" / "iter-0000", "base", None)
    notify("base", base)
    promoted_before = [r for r in done if r["promoted"]]
    best = promoted_before[-1]["scores"] if promoted_before else base
    if saved_key is not None:
        phase.engine.set_adapter(phase.checkpoints.latest() / "adapter", name="resumed")
    for iteration in range(len(done) + 1, iterations + 1):
        new_tasks = refresh_tasks(config, phase, iteration)
        phase.run(iteration * config.train.steps, lambda rec: notify("step", rec))
        adapter = snapshot_adapter(phase, run_dir / "adapters" / f"iter-{iteration:04d}")
        phase.engine.set_adapter(adapter, name=adapter.name)
        scores = heldout.evaluate(phase.engine, run_dir / "evals" / f"iter-{iteration:04d}", adapter.name, adapter)
        promoted, comparison = heldout.compare(scores, best)
        if promoted:
            best = scores
            info = {"iteration": iteration, "step": phase.state.step, "scores": scores, "comparison": comparison}
            promote(run_dir, adapter, info)
            heldout.on_promoted(adapter, info)
        record = {"iteration": iteration, "step": phase.state.step, "new_tasks": new_tasks, "scores": scores,
                  "base": base, "promoted": promoted, "promotion_comparison": comparison, "adapter": str(adapter),
                  "time": time.time()}
        done.append(record)
        write_jsonl_atomic(run_dir / "loop.jsonl", done)
        notify("iteration", record)
    return done


def refresh_tasks(config: RLConfig, phase: Any, iteration: int) -> int:
    """Synthesize fresh tasks with the current policy (source ``synth``); idempotent per iteration."""
    if "synth" not in config.tasks.sources or not config.tasks.synth_count:
        return 0
    from rl.synth import synthesize

    seed = config.seed * 1000 + iteration
    if any(t.task_id.startswith(f"synth/oss/{seed}/") for t in phase.tasks):
        return 0  # done before a kill
    report = FilterReport()
    new = synthesize(phase.engine, config.tasks.synth_count, seed=seed, report=report)
    added = phase.add_tasks(clean_source(config, f"synth/{iteration}", new))
    log.info("iteration %d: %d synthetic tasks added; filter report %s", iteration, added, report.as_dict())
    return added


def snapshot_adapter(phase: Any, folder: Path) -> Path:
    """Copy the trainer's current adapter to ``folder`` (complete before it appears under that name)."""
    if folder.is_dir():
        return folder
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    phase.trainer.save_adapter(tmp)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tmp, folder)
    return folder


def promote(run_dir: Path, adapter: Path, info: dict[str, Any]) -> Path:
    """Point ``<run_dir>/promoted`` at ``adapter`` atomically (see the module docstring)."""
    (adapter / "promotion.json").write_text(json.dumps(info, indent=1))
    link = run_dir / PROMOTED
    tmp = run_dir / f".{PROMOTED}.tmp-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(adapter, run_dir), tmp)
    os.replace(tmp, link)
    log.info("promoted %s", adapter)
    return link
