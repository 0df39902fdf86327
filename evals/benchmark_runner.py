"""generate → execute → score, resumable: ``evaluate(EvalSpec) -> EvalSummary``.

Invariant: each (task, sample) gets at most one line in ``results.jsonl``; a run killed at any point and
resumed with the same spec ends with exactly one result per (task, sample). Finished generations are kept in
``generations.jsonl`` so a resumed run re-executes but does not regenerate them.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from evals import datasets
from evals.execute import Candidate, ExecConfig, judge_each
from evals.generate import Generation, Generator, GenRequest, make_generator
from evals.official_samples import FULL_BENCHMARKS, complete_samples, write_samples
from evals.progress import Bars
from evals.prompts import PromptMode, assemble_program, build_prompt, extract_code
from evals.results import result_record
from evals.rundir import RunDir, default_run_dir
from evals.scoring import summarize
from evals.security import security_report
from evals.spec import EvalSpec, EvalSummary
from evals.task import Task
from sandbox.executor import Executor, make_executor
from sandbox.types import Limits

EXEC_BATCH = 8


def _warn(message: str) -> None:
    print(f"codeloop eval: warning: {message}", file=sys.stderr)


def load_tasks(spec: EvalSpec) -> tuple[list[Task], str]:
    """The tasks of the run and a sentence saying which part of the benchmark they are."""
    tasks = datasets.load(spec.benchmark, spec.split, subset=spec.subset, path=spec.data_path,
                          swebench_dir=spec.swebench_dir)
    total = len(tasks)
    coverage = datasets.coverage(spec.benchmark, spec.subset, total)
    if spec.limit and spec.limit < total:
        tasks = tasks[: spec.limit]
        coverage += f"; limited to the first {spec.limit}"
    return tasks, coverage


def generator_settings(spec: EvalSpec, generator: Generator | None) -> dict[str, Any]:
    """The settings that will write this run's answers: ``generator``'s, or those ``make_generator`` would use."""
    if generator is not None:
        settings = getattr(generator, "settings", None)
        return settings() if settings is not None else {"generator": type(generator).__name__}
    if spec.backend == "hf":
        from inference.compute_dtype import resolve_dtype

        return {"backend": "hf", "dtype": resolve_dtype("auto")}
    from evals.generate import engine_settings
    from inference.config import EngineConfig

    settings = engine_settings(EngineConfig(model=spec.model, **spec.engine_options), spec.adapter)
    return settings if spec.engine_replicas == 1 else {**settings, "engine_replicas": spec.engine_replicas}


def resolve_mode(spec: EvalSpec, tokenizer: Any) -> PromptMode:
    if spec.prompt_mode != "auto":
        return PromptMode(spec.prompt_mode)
    return PromptMode.CHAT if getattr(tokenizer, "chat_template", None) else PromptMode.COMPLETION


def exec_config(spec: EvalSpec) -> ExecConfig:
    limits = Limits(timeout_s=spec.run_timeout_s, memory_mb=spec.memory_mb)
    return ExecConfig(backend=spec.sandbox, concurrency=spec.concurrency, limits=limits, executor=spec.executor,
                      ray_address=spec.ray_address)


def evaluate(spec: EvalSpec, generator: Generator | None = None, execution: ExecConfig | None = None) -> EvalSummary:
    """Run ``spec`` to the end (resuming when asked) and return its summary; also written to summary.json.

    Pass ``generator`` to reuse a loaded engine (e.g. ``EngineGenerator(engine, adapter_id)`` in the RL loop).
    """
    if spec.benchmark == "swebench":
        from evals.swebench.pipeline import evaluate_swebench

        return evaluate_swebench(spec, generator)
    start = time.perf_counter()
    spec = replace(spec, run_dir=Path(spec.run_dir or default_run_dir(spec)), engine=generator_settings(spec, generator))
    tasks, coverage = load_tasks(spec)
    rd = RunDir(spec.run_dir, spec)
    rd.open()
    results = rd.load(rd.results, _warn)
    generations = rd.load(rd.generations, _warn)
    keys = [(t.task_id, s) for t in tasks for s in range(spec.samples)]
    todo = [k for k in keys if k not in results]
    by_id = {t.task_id: t for t in tasks}
    timing = {"gen": 0.0, "exec": 0.0}
    execution = execution or exec_config(spec)
    executor = make_executor(execution.executor_config()) if todo else None  # a bad cluster fails before generating
    with Bars(spec.progress) as bars, ThreadPoolExecutor(max_workers=1) as pool:
        bars.add("execute", len(keys), done=len(keys) - len(todo))
        futures: list[Future] = []
        pending: list[Candidate] = []

        def flush() -> None:
            if pending:
                futures.append(pool.submit(_judge_and_store, list(pending), execution, executor, rd, bars, timing))
                pending.clear()

        def on_generation(g: Generation, mode: PromptMode) -> None:
            task = by_id[g.key[0]]
            program = assemble_program(task, mode, g.text) if not g.error else ""
            pending.append(Candidate(task, g.key[1], g.text, program, g.num_tokens, g.error))
            if len(pending) >= EXEC_BATCH:
                flush()

        for k in todo:
            if k in generations:
                rec = generations[k]
                on_generation(Generation(k, rec["text"], rec.get("num_tokens", 0), error=rec.get("error", "")),
                              PromptMode(rec["mode"]))
        flush()
        missing = [k for k in todo if k not in generations]
        if missing:
            generator = generator or _make_generator(spec)
            mode = resolve_mode(spec, generator.tokenizer)
            requests = _requests(spec, missing, by_id, mode, generator.tokenizer)
            bars.add("generate", len(requests))
            t0 = time.perf_counter()
            for g in generator.generate(requests):
                rd.generations.append({"task_id": g.key[0], "sample_index": g.key[1], "text": g.text,
                                       "num_tokens": g.num_tokens, "finish_reason": g.finish_reason,
                                       "error": g.error, "mode": mode.value})
                bars.advance("generate")
                on_generation(g, mode)
            timing["gen"] = time.perf_counter() - t0
            flush()
        for f in futures:
            f.result()
    records = rd.load(rd.results, _warn)
    summary = summarize(spec, tasks, records, coverage)
    summary.generation_seconds = round(timing["gen"], 2)
    summary.execution_seconds = round(timing["exec"], 2)
    summary.wall_seconds = round(time.perf_counter() - start, 2)
    summary.prompt_mode = next((r.get("mode", "") for r in rd.load(rd.generations, _warn).values()), "")
    summary.label = spec.label()
    codes = [extract_code(g.get("text", ""), by_id[k[0]].entry_point)
             for k, g in rd.load(rd.generations, _warn).items() if k[0] in by_id]
    summary.security = security_report(codes)
    from security.tamper import tamper_summary  # the security package loads bandit: only when needed

    summary.tampering = tamper_summary(codes)
    samples = write_samples(spec.run_dir, tasks, records, spec.model)
    if _partial(spec):
        summary.notes.append(complete_samples(samples, spec.benchmark).note())
    rd.write_summary(summary.as_dict())
    return summary


def _make_generator(spec: EvalSpec) -> Generator:
    """``make_generator``'s engine, or ``spec.engine_replicas`` of them as Ray actors."""
    if spec.engine_replicas > 1:
        from evals.replicas import ReplicaGenerator

        return ReplicaGenerator(spec.model, spec.adapter, spec.engine_options, spec.engine_replicas, spec.ray_address)
    return make_generator(spec)


def _partial(spec: EvalSpec) -> bool:
    """A run of part of a benchmark whose official tool needs every task (--limit, a BigCodeBench subset)."""
    subset = spec.benchmark == "bigcodebench" and (spec.subset or "full") != "full"
    return spec.benchmark in FULL_BENCHMARKS and bool(spec.limit or subset)


def _requests(spec: EvalSpec, keys: list[tuple[str, int]], by_id: dict[str, Task], mode: PromptMode,
              tokenizer: Any) -> list[GenRequest]:
    out = []
    for task_id, sample in keys:
        prompt = build_prompt(by_id[task_id], mode, tokenizer)
        seed = None if spec.temperature == 0 else spec.seed * 1_000_003 + sample
        out.append(GenRequest((task_id, sample), prompt.text, prompt.stop, spec.max_tokens, spec.temperature,
                              spec.top_p, seed))
    return out


def _judge_and_store(batch: list[Candidate], config: ExecConfig, executor: Executor | None, rd: RunDir, bars: Bars,
                     timing: dict) -> None:
    """Record each verdict the moment it exists (the run folder is the only record of what finished)."""
    t0 = time.perf_counter()
    try:
        for _, result in judge_each(batch, config, executor):
            rd.results.append(result_record(result))
            bars.advance("execute")
    finally:
        timing["exec"] += time.perf_counter() - t0


__all__ = ["EvalSpec", "EvalSummary", "evaluate", "load_tasks"]
