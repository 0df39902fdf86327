"""Held-out evaluation of the engine's current weights through ``evals`` (resumable per benchmark).

``mbpp-validation`` (MBPP 511–600) decides promotion; HumanEval+, MBPP+ (test), a BigCodeBench subset and
the SWE-bench subset (when its folder is configured) measure transfer. Each run is limited to the first
``eval.limit`` tasks (``eval.limits`` per benchmark) to keep an iteration affordable on CPU; the limit is part of every report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from evals.results import per_task_passes
from rl.config import RLConfig

log = logging.getLogger(__name__)

BENCHMARKS = {  # our name -> (evals benchmark, split)
    "mbpp-validation": ("mbpp", "validation"),
    "humanevalplus": ("humanevalplus", None),
    "mbppplus": ("mbppplus", None),
    "bigcodebench": ("bigcodebench", "complete"),
    "swebench": ("swebench", None),
}


def evaluate_all(config: RLConfig, engine: Any, out_dir: Path, label: str,
                 adapter_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """{benchmark: {"pass@1", "num_tasks", "coverage", "run_dir"}} for the engine's active adapter (loaded from
    ``adapter_dir``; None: the base model). Each run's identity holds the engine's settings and the adapter's
    digest, so a folder written under other settings (or weights) is refused, never silently reused."""
    from evals.benchmark_runner import evaluate
    from evals.generate import EngineGenerator
    from evals.spec import EvalSpec

    scores = {}
    for name in config.eval.benchmarks:
        if name == "swebench" and not config.eval.swebench_dir:
            log.warning("swebench skipped: eval.swebench_dir is not set")
            continue
        benchmark, split = BENCHMARKS[name]
        spec = EvalSpec(
            benchmark=benchmark, model=config.model, adapter=label, split=split,
            subset=config.eval.bigcodebench_subset if benchmark == "bigcodebench" else None,
            max_tokens=config.eval.max_tokens, limit=config.eval.limit_for(name), run_dir=out_dir / name, resume=True,
            sandbox=config.rollout.sandbox, seed=config.seed, progress=False, executor=config.rollout.executor,
            ray_address=config.rollout.ray_address,
            swebench_dir=Path(config.eval.swebench_dir) if config.eval.swebench_dir else None,
        )
        summary = evaluate(spec, generator=EngineGenerator(engine, engine.adapter_key, adapter_dir))
        scores[name] = {"pass@1": summary.pass_at_k.get("pass@1", 0.0), "num_tasks": summary.num_tasks,
                        "coverage": summary.coverage, "run_dir": str(out_dir / name),
                        "num_generated_tokens": summary.num_generated_tokens, "wall_s": summary.wall_seconds}
        log.info("%s %s pass@1=%.3f (%s)", label, name, scores[name]["pass@1"], summary.coverage)
    return scores


def beats(candidate_dir: Path, best_dir: Path) -> tuple[bool, float, float, int]:
    """(candidate better, candidate mean, best mean, tasks) on the tasks both runs judged."""
    cand, best = per_task_passes(candidate_dir), per_task_passes(best_dir)
    common = sorted(set(cand) & set(best))
    if not common:
        return False, 0.0, 0.0, 0
    c = sum(cand[t] for t in common) / len(common)
    b = sum(best[t] for t in common) / len(common)
    return c > b, c, b, len(common)


class BenchmarkHeldOut:
    """The held-out side of the chat loop: ``eval.benchmarks`` through evals; an adapter is promoted when its
    MBPP-validation pass@1 is strictly higher than the best so far's (``beats``)."""

    def __init__(self, config: RLConfig) -> None:
        self.config = config

    def evaluate(self, engine: Any, out_dir: Path, label: str, adapter_dir: Path | None) -> dict[str, Any]:
        return evaluate_all(self.config, engine, out_dir, label, adapter_dir)

    def compare(self, scores: dict[str, Any], best: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(promote, the comparison recorded in loop.jsonl) of ``scores`` against the best run's."""
        best_dir = Path(best["mbpp-validation"]["run_dir"])
        promoted, mine, top, num = beats(Path(scores["mbpp-validation"]["run_dir"]), best_dir)
        return promoted, {"candidate": mine, "best": top, "num_tasks": num, "best_run": str(best_dir)}

    def on_promoted(self, adapter: Path, info: dict[str, Any]) -> None:
        """Nothing beyond ``<run_dir>/promoted`` (rl/loop.py)."""
