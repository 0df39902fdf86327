"""``codeloop train --config FILE`` and ``codeloop loop [--iterations N] [--config FILE]`` /
``codeloop loop --repo REPO [--tasks FILE] [--acceptance-log FILE]`` (the user's repository, rl/repo_loop.py) /
``codeloop loop report RUN_DIR``: the RL loop (rl/)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codeloop.arguments import positive_int
from codeloop.commands.tasks import acceptance_flag, acceptance_log
from codeloop.errors import UserError

if TYPE_CHECKING:
    from rl.config import RLConfig


REPO_CONFIG = Path(__file__).resolve().parents[2] / "rl" / "configs" / "repo-cpu.toml"
"""The config of ``loop --repo`` / ``--tasks`` without ``--config`` (shipped with the ``rl`` package)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="one RL training phase (GRPO/RFT on LoRA), resumable")
    _common(p)
    p.add_argument("--steps", type=positive_int, help="override train.steps")
    p.add_argument("--algo", choices=("grpo", "rft"), help="override train.algo")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("loop", help="train → evaluate → promote, N iterations; or `loop report RUN_DIR`")
    p.add_argument("action", nargs="?", choices=("report",), help="report: write report.md + plots of a run")
    p.add_argument("report_dir", nargs="?", type=Path, help="run directory (with `report`)")
    _common(p)
    p.add_argument("--iterations", type=int, default=1, help="0: only evaluate the base model")
    p.add_argument("--steps", type=positive_int, help="override train.steps (steps per iteration)")
    p.add_argument("--eval-limit", type=positive_int, help="override eval.limit (first N tasks of each benchmark)")
    p.add_argument("--algo", choices=("grpo", "rft"), help="override train.algo")
    repo = p.add_argument_group("repository loop (learn a repository from its own tests)")
    repo.add_argument("--repo", help="repository folder or SWE-bench instance id: mine it, train on its train "
                      "files, evaluate and promote on its held-out files (eval fim)")
    repo.add_argument("--tasks", type=Path, help="a `codeloop tasks mine` file to use instead of mining")
    repo.add_argument("--python", type=Path, help="interpreter of a folder repository (default: its .venv, else this one)")
    repo.add_argument("--mine-seed", type=int, default=0, help="the miner's split and span seed")
    repo.add_argument("--heldout", type=float, default=0.3, help="fraction of files held out")
    repo.add_argument("--max-tests", type=int, default=8, help="covering tests kept per task")
    repo.add_argument("--refresh", action="store_true", help="rebuild the cached coverage map and gold checks")
    repo.add_argument("--swebench-dir", help="offline SWE-bench folder (default $CODELOOP_SWEBENCH_DIR or ../shared/...)")
    acceptance_flag(repo)
    p.set_defaults(func=_loop)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML or JSON config (see rl/config.py); defaults otherwise "
                   "(`loop --repo`/`--tasks`: the shipped rl/configs/repo-cpu.toml)")
    p.add_argument("--run-dir", help="override run_dir")
    p.add_argument("--model", help="override model")
    p.add_argument("--task-limit", type=positive_int, help="override tasks.limit")
    p.add_argument("--threads", type=positive_int, help="override train.num_threads (engine and trainer)")
    p.add_argument("--seed", type=int, help="override seed (task order, sampling)")
    p.add_argument("--executor", choices=("local", "ray"), help="override rollout.executor: where sandbox runs "
                   "happen (ray: a Ray cluster's 'sandbox' nodes; needs codeloop[cluster])")
    p.add_argument("--ray-address", help="override rollout.ray_address (the Ray head's host:port)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _config(args: argparse.Namespace, **extra: Any) -> RLConfig:
    from rl.config import ConfigError, load_config

    overrides = {"run_dir": args.run_dir, "model": args.model, "seed": args.seed, "tasks.limit": args.task_limit,
                 "train.steps": args.steps, "train.num_threads": args.threads, "rollout.executor": args.executor,
                 "rollout.ray_address": args.ray_address, **extra}
    path = args.config
    if path is None and (getattr(args, "repo", None) or getattr(args, "tasks", None)):
        path = REPO_CONFIG  # the repository loop's tuned defaults, not the MBPP loop's
    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean a bad config or input (shown as one line), not a bug."""
    from inference.catalog import ModelError
    from inference.lora import AdapterError
    from inference.models.loader import ModelLoadError
    from rl.repo_loop import RepoLoopError
    from rl.training_phase import NoTasksError
    from sandbox.executor import ExecutorError

    return (NoTasksError, AdapterError, ModelLoadError, ModelError, RepoLoopError, ExecutorError)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)


def _train(args: argparse.Namespace) -> int:
    from rl.loop import train

    config = _config(args, **{"train.algo": args.algo})
    _logging()
    try:
        last = train(config, on_step=lambda rec: _print_step(rec, args.json))
    except _user_errors() as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps({"run_dir": config.run_dir, "last": last}))
    return 0


def _loop(args: argparse.Namespace) -> int:
    if args.action == "report":
        if args.report_dir is None or not args.report_dir.is_dir():
            raise UserError(f"loop report needs an existing run directory, got {args.report_dir}")
        from rl.report import write_report

        path = write_report(args.report_dir)
        print(json.dumps({"report": str(path)}) if args.json else f"wrote {path}")
        return 0
    if args.iterations < 0:
        raise UserError("--iterations must be >= 0 (0: evaluate the base model only)")
    config = _config(args, **{"eval.limit": args.eval_limit, "train.algo": args.algo})
    _logging()
    on_event = lambda kind, rec: _event(kind, rec, args.json)  # noqa: E731
    try:
        if args.repo or args.tasks or "repo" in config.tasks.sources:
            records = _repo_loop(args, config, on_event)
        else:
            from rl.loop import run_loop

            records = run_loop(config, args.iterations, on_event=on_event)
    except _user_errors() as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps({"run_dir": config.run_dir, "iterations": records}))
    return 0


def _repo_loop(args: argparse.Namespace, config: RLConfig, on_event: Any) -> list[dict]:
    from dataclasses import replace

    from codeloop.arguments import swebench_dir
    from rl.repo_loop import RepoSpec, run_repo_loop

    where = swebench_dir(args.swebench_dir)
    if not config.eval.swebench_dir and where.is_dir():  # SWE-bench instances resolve through it
        config = replace(config, eval=replace(config.eval, swebench_dir=str(where)))
    tasks = args.tasks or (Path(config.tasks.repo_tasks) if not args.repo and config.tasks.repo_tasks else None)
    spec = RepoSpec(repo=args.repo, tasks=tasks, python=args.python, swebench_dir=where, seed=args.mine_seed,
                    heldout_fraction=args.heldout, max_tests=args.max_tests, concurrency=config.rollout.concurrency,
                    refresh=args.refresh, acceptance_log=acceptance_log(args.acceptance_log))
    return run_repo_loop(config, spec, args.iterations, on_event)


def _print_step(rec: dict, as_json: bool) -> None:
    if not as_json:
        print(f"step {rec['step']}: reward {rec['reward_mean']:.3f}±{rec['reward_std']:.3f} "
              f"pass {rec['pass_rate']:.2f} tamper {rec.get('tamper_flagged', 0)} loss {rec['loss']:.4f} kl {rec['kl']:.4f} "
              f"{rec['rollout_tokens_per_s']:.1f} tok/s {rec['wall_s']:.0f}s", flush=True)


def _event(kind: str, rec: dict, as_json: bool) -> None:
    if kind == "step":
        _print_step(rec, as_json)
    elif not as_json:
        scores = rec if kind == "base" else rec["scores"]
        text = ", ".join(f"{k} {_headline(v)} ({v['num_tasks']})" for k, v in scores.items())
        tail = "" if kind == "base" else f" promoted={rec['promoted']}"
        print(f"{kind}{'' if kind == 'base' else ' ' + str(rec['iteration'])}: {text}{tail}", flush=True)


def _headline(score: dict) -> str:
    if "pass@1" in score:
        return f"{score['pass@1']:.3f}"
    return f"tests-pass {score['tests_pass']:.3f} exact-match {score['exact_match']:.3f}"
