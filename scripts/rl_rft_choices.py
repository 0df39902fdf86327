"""Measurements behind two RFT choices (issue 23, "doubtful points"), from finished RL runs.

    python scripts/rl_rft_choices.py RUN_DIR [RUN_DIR ...]                 # which samples RFT trains on
    python scripts/rl_rft_choices.py RUN_DIR --temperature --out FILE.json  # loss at T=0.8 vs T=1 (real model)

Selection: over every step's rollouts, how many passing samples the old rule (every passing sample) and the
new one (distinct solutions, at most ``train.rft_max_per_task`` per task) keep, how many of the old rule's were
duplicates, and what share of the trained completion tokens came from tasks where every sample passed.
Temperature: from the run's base model and a fresh LoRA (same seed), one optimizer update on step 1's kept
samples with the loss at T=0.8 (the old code) and at T=1 (the new), then the T=1 NLL of those samples and of
the passing samples of the other steps (unseen in the update).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace


def load_steps(run_dir: Path) -> list[list[dict]]:
    return [[json.loads(x) for x in p.read_text().splitlines() if x.strip()]
            for p in sorted((run_dir / "rollouts").glob("step-*.jsonl"))]


def with_code(records: list[dict], tasks: dict) -> list[SimpleNamespace]:
    from evals.prompts import PromptMode, assemble_program
    from rl.rollout import eval_task

    return [SimpleNamespace(**r, code=assemble_program(eval_task(tasks[r["task_id"]]), PromptMode.CHAT, r["completion"])
                            or None) for r in records]


def groups_of(step: list[SimpleNamespace]) -> list[list[SimpleNamespace]]:
    by_task: dict[str, list] = defaultdict(list)
    for r in step:
        by_task[r.task_id].append(r)
    return [g for g in by_task.values() if not any(r.skipped for r in g)]


def selection(run_dir: Path) -> dict:
    from rl.grpo import select_rft
    from rl.tasks import RLTask

    config = json.loads((run_dir / "config.json").read_text())
    cap = config["train"].get("rft_max_per_task", 4)
    tasks = {t["task_id"]: RLTask.from_dict(t) for t in map(json.loads, (run_dir / "tasks.jsonl").read_text().splitlines())}
    out = {"passing": 0, "kept_new": 0, "duplicates": 0, "tokens_old": 0, "tokens_new": 0,
           "tokens_old_all_pass_tasks": 0, "tokens_new_all_pass_tasks": 0, "all_pass_tasks": 0, "tasks": 0}
    for step in load_steps(run_dir):
        for group in groups_of(with_code(step, tasks)):
            passing = [r for r in group if r.status == "passed"]
            keep_new = select_rft([group], cap)
            distinct = select_rft([group], len(group))
            all_pass = len(passing) == len(group)
            out["tasks"] += 1
            out["all_pass_tasks"] += all_pass
            out["passing"] += len(passing)
            out["kept_new"] += sum(keep_new)
            out["duplicates"] += len(passing) - sum(distinct)
            old_tokens = sum(r.num_tokens for r in passing)
            new_tokens = sum(r.num_tokens for r, k in zip(group, keep_new, strict=True) if k)
            out["tokens_old"] += old_tokens
            out["tokens_new"] += new_tokens
            out["tokens_old_all_pass_tasks"] += old_tokens if all_pass else 0
            out["tokens_new_all_pass_tasks"] += new_tokens if all_pass else 0
    return out


def temperature_effect(run_dir: Path) -> dict:
    """One update per temperature from the same start; T=1 NLL of the trained and of unseen passing samples."""
    import torch

    from inference.catalog import resolve_model_path
    from rl.config import config_from_dict
    from rl.tasks import RLTask
    from rl.trainer import Trainer

    config = config_from_dict(json.loads((run_dir / "config.json").read_text()))
    tasks = {t["task_id"]: RLTask.from_dict(t) for t in map(json.loads, (run_dir / "tasks.jsonl").read_text().splitlines())}
    steps = [with_code(s, tasks) for s in load_steps(run_dir)]
    tok = trainer_tokenizer(config)
    cap = config.train.rft_max_per_task
    trained = _samples(steps[0], tasks, tok, cap, only_kept=True)
    unseen = [s for st in steps[1:] for s in _samples(st, tasks, tok, cap, only_kept=False)]
    results = {}
    for temperature in (0.8, 1.0):
        torch.manual_seed(config.seed)
        trainer = Trainer(config, resolve_model_path(config.model))
        before = {"trained_nll_t1": _nll(trainer, trained), "unseen_nll_t1": _nll(trainer, unseen)}
        grad_norm = _one_update(trainer, trained, temperature, config.train.max_grad_norm)
        after = {"trained_nll_t1": _nll(trainer, trained), "unseen_nll_t1": _nll(trainer, unseen)}
        results[f"T={temperature}"] = {"grad_norm": grad_norm, "before": before, "after": after,
                                       "num_trained": len(trained), "num_unseen": len(unseen)}
    return results


def _samples(step: list, tasks: dict, tok, cap: int, only_kept: bool) -> list:
    from evals.prompts import PromptMode, build_prompt
    from rl.grpo import select_rft
    from rl.rollout import eval_task
    from rl.trainer import Sample

    out = []
    for group in groups_of(step):
        for r, k in zip(group, select_rft([group], cap), strict=True):
            if k if only_kept else r.status == "passed":
                prompt = build_prompt(eval_task(tasks[r.task_id]), PromptMode.CHAT, tok).text
                out.append(Sample(tok.encode(prompt), tok.encode(r.completion), 0.0, True))
    return out


def _nll(trainer, batch: list) -> float:
    """Token-mean NLL at T=1 (the model's own distribution), no dropout."""
    import torch

    trainer.model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(batch), 2):
            lp, mask = trainer.logprobs(batch[i:i + 2], 1.0)
            total += float(-(lp * mask).sum())
            count += float(mask.sum())
    return total / max(1.0, count)


def _one_update(trainer, batch: list, temperature: float, max_grad_norm: float) -> float:
    """One AdamW update on the RFT loss at ``temperature``; returns the gradient norm before clipping."""
    import torch

    from rl.grpo import rft_loss

    trainer.model.train()
    trainer.optimizer.zero_grad()
    total = sum(len(s.completion_ids) for s in batch)
    for i in range(0, len(batch), 2):
        mb = batch[i:i + 2]
        lp, mask = trainer.logprobs(mb, temperature)
        loss, _ = rft_loss(lp, mask, torch.ones(len(mb)))
        (loss * float(mask.sum()) / total).backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(trainer.params, max_grad_norm))
    trainer.optimizer.step()
    return grad_norm


def trainer_tokenizer(config):
    from transformers import AutoTokenizer

    from inference.catalog import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(config.model))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--temperature", action="store_true", help="also measure the loss temperature (loads the model)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from bench.output import emit

    report = {"selection": {str(d): selection(d) for d in args.run_dirs}}
    total = {k: sum(r[k] for r in report["selection"].values()) for k in next(iter(report["selection"].values()))}
    report["selection_total"] = total
    if args.temperature:
        report["temperature"] = temperature_effect(args.run_dirs[0])
    emit(report, args.out)


if __name__ == "__main__":
    main()
