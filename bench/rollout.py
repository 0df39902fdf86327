"""``codeloop bench rollout``: RL rollout throughput, our engine against HF ``generate`` on the same prompts.

One training step's rollouts (P MBPP-train tasks x G samples, the loop's chat prompt and sampling settings
from the RL config), generated three ways in one process, one after another:

- ``engine``: one n=G request per task, all in flight at once (what the loop does); then the sandbox runs
  every sample against its asserts (sandbox runs/s).
- ``hf_grouped``: ``generate(num_return_sequences=G)`` per task; the G samples batched, tasks in turn.
- ``hf_batch``: one left-padded ``generate`` over all P x G sequences (how TRL's GRPO trainer generates).

Sampling makes lengths differ between the three, so each reports generated tokens per second, a sequence's
tokens counted up to its end (EOS or the closing fence).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def rollout_bench(config, prompts: int, peers: bool) -> dict[str, Any]:
    """The benchmark's JSON: settings, machine, date and :func:`measure`'s numbers."""
    from bench.output import machine_info

    return {"model": config.model, "group_size": config.rollout.group_size, "prompts": prompts,
            "temperature": config.rollout.temperature, "max_tokens": config.rollout.max_tokens,
            "machine": machine_info(), "date": time.strftime("%Y-%m-%d"), **measure(config, peers)}


def measure(config, peers: bool) -> dict[str, Any]:
    import gc

    from inference.catalog import resolve_model_path
    from rl.rewards import RewardSpec
    from rl.rollout import collect
    from rl.tasks import from_mbpp
    from rl.training_phase import make_engine

    tasks = from_mbpp("train")[:config.rollout.prompts_per_step]
    engine = make_engine(config)
    batch = collect(engine, tasks, config.rollout, RewardSpec(), config.seed)
    prompts = [r.prompt_token_ids for r in batch.rollouts[::config.rollout.group_size]]
    out: dict[str, Any] = {"engine": {
        "seconds": batch.generation_seconds, "tokens": batch.num_generated_tokens, "tok_s": batch.tokens_per_s,
        "pass_rate": batch.pass_rate,
        "sandbox_runs": batch.num_sandbox_runs, "sandbox_seconds": batch.execution_seconds,
        "sandbox_runs_per_s": batch.sandbox_runs_per_s}}
    stop = _stop_strings(engine, tasks[0])
    del engine
    gc.collect()
    if peers:
        peer = _HFSampler(resolve_model_path(config.model), config.train.dtype, config.rollout, stop)
        out["hf_grouped"] = peer.timed([[p] for p in prompts])
        out["hf_batch"] = peer.timed([prompts])
        for name in ("hf_grouped", "hf_batch"):
            out[f"ratio_vs_{name}"] = out["engine"]["tok_s"] / max(out[name]["tok_s"], 1e-9)
    return out


def _stop_strings(engine, task) -> list[str]:
    from evals.prompts import PromptMode, build_prompt
    from rl.rollout import eval_task

    return list(build_prompt(eval_task(task), PromptMode.CHAT, engine.tokenizer).stop)


class _HFSampler:
    """Sampled ``generate`` with the rollout settings; each call gets a list of prompt batches."""

    def __init__(self, model_dir: Path, dtype: str, settings, stop: list[str]) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from inference.compute_dtype import torch_dtype

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype(dtype)).eval()
        self.settings, self.stop = settings, stop
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        eos = self.model.generation_config.eos_token_id
        self.ends = {self.pad, *(eos if isinstance(eos, list) else [eos])}

    def timed(self, batches: list[list[list[int]]]) -> dict[str, float]:
        start, tokens = time.perf_counter(), 0
        for prompts in batches:
            tokens += self._generate(prompts)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "tokens": tokens, "tok_s": tokens / seconds if seconds else 0.0}

    def _generate(self, prompts: list[list[int]]) -> int:
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        s = self.settings
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=s.temperature,
                                      top_p=s.top_p, top_k=0, repetition_penalty=1.0, max_new_tokens=s.max_tokens,
                                      num_return_sequences=s.group_size, pad_token_id=self.pad,
                                      stop_strings=self.stop or None, tokenizer=self.tokenizer)
        return sum(self._length(row) for row in out[:, width:].tolist())

    def _length(self, row: list[int]) -> int:
        """Tokens up to and including the first end token (EOS, or the padding after a stop string)."""
        return next((i + 1 for i, t in enumerate(row) if t in self.ends), len(row))
