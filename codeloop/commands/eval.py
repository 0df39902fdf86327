"""`codeloop eval BENCHMARK ...`, `codeloop eval report RUN_DIR...`, `codeloop eval canonical BENCHMARK`;
`eval fim` and `eval fim-report` come from codeloop/commands/fim.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.arguments import positive_int, swebench_dir
from codeloop.commands import fim
from codeloop.errors import UserError
from evals.datasets import BENCHMARKS, CUSTOM
from evals.official_samples import FULL_BENCHMARKS


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", help="mbpp: test|train|validation|prompt; bigcodebench: complete|instruct")
    p.add_argument("--subset", help="bigcodebench: full|stdlib|numpy-pandas")
    p.add_argument("--limit", type=positive_int, help="only the first K tasks")
    p.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "docker"])
    p.add_argument("--timeout", type=float,
                   help="seconds per sandbox run (default 240 for bigcodebench, as its official harness; else 20)")
    p.add_argument("--concurrency", type=int, default=2, help="sandbox runs at once (local executor)")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="where sandbox runs happen: this machine, or a Ray cluster's nodes that advertise a "
                   "'sandbox' resource (needs codeloop[cluster])")
    p.add_argument("--ray-address", help="the Ray head's host:port (default: $RAY_ADDRESS, else the cluster "
                   "`ray start` left on this machine)")
    p.add_argument("--swebench-dir", help="offline SWE-bench folder (default $CODELOOP_SWEBENCH_DIR or ../shared/benchmarks/swebench)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def register(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser("eval", help="evaluate the model on a benchmark, report, check canonical solutions")
    sub = ev.add_subparsers(dest="eval_command", metavar="BENCHMARK|custom|fim|report|canonical|complete-samples",
                            required=True)
    for name in BENCHMARKS:
        p = sub.add_parser(name, help=f"evaluate on {name}")
        _run_options(p)
        p.set_defaults(func=run_eval, benchmark=name, data_path=None)
    p = sub.add_parser("custom", help="evaluate on your own JSONL file of HumanEval, MBPP or BigCodeBench records")
    p.add_argument("data_path", metavar="FILE.jsonl", help="one task per line; the format is told by the fields")
    _run_options(p)
    p.set_defaults(func=run_eval, benchmark=CUSTOM)
    r = sub.add_parser("report", help="markdown table + plots comparing finished runs")
    r.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    r.add_argument("--out", default="eval-report", help="output folder")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run_report)
    c = sub.add_parser("canonical", help="run the canonical solutions through the sandbox (all should pass)")
    c.add_argument("benchmark", choices=BENCHMARKS)
    _common(c)
    c.add_argument("--run-dir", help="record each verdict in this folder's results.jsonl as it finishes")
    c.add_argument("--resume", action="store_true", help="continue the check in --run-dir (runs only unfinished tasks)")
    c.set_defaults(func=run_canonical)
    f = sub.add_parser("complete-samples", help="fill a samples file's missing tasks with empty solutions, so "
                       "evalplus / bigcodebench accept it")
    f.add_argument("samples", metavar="SAMPLES.jsonl", help="samples.jsonl of a run (or any file in that format)")
    f.add_argument("--benchmark", required=True, choices=sorted(FULL_BENCHMARKS))
    f.add_argument("--out", help="default: samples-full.jsonl beside SAMPLES")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=run_complete_samples)
    fim.register(sub)


def _run_options(p: argparse.ArgumentParser) -> None:
    """Options of an evaluation run (a built-in benchmark or a custom file)."""
    _common(p)
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="catalog name or HF folder")
    p.add_argument("--adapter", help="LoRA adapter (passed to the engine as adapter_id)")
    p.add_argument("--samples", type=positive_int, default=1, help="samples per task (pass@k)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--max-tokens", type=positive_int, help="new tokens per sample (default: the official harness's, "
                   "1280 for bigcodebench, else 512)")
    p.add_argument("--prompt-mode", default="auto", choices=["auto", "chat", "completion"])
    p.add_argument("--run-dir", help="where results go (default runs/<benchmark>-<model>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--backend", default="engine", choices=["engine", "hf"], help="our engine or HF generate")
    p.add_argument("--kv-dtype", help="engine KV cache dtype (e.g. int8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine-replicas", type=positive_int, default=1,
                   help="engines generating at once as Ray actors on nodes advertising an 'engine' resource, "
                   "requests routed by prompt head (with --executor ray; default 1: in this process)")


def _engine_options(args: argparse.Namespace) -> dict:
    if not args.kv_dtype:
        return {}
    from inference.config import CacheConfig

    return {"cache": CacheConfig(kv_cache_dtype=args.kv_dtype)}


def run_eval(args: argparse.Namespace) -> int:
    from evals.benchmark_runner import evaluate
    from evals.datasets import DatasetError
    from evals.rundir import RunDirError
    from evals.spec import EvalSpec
    from sandbox.executor import ExecutorError

    try:
        spec = EvalSpec(
            benchmark=args.benchmark, model=args.model, adapter=args.adapter, split=args.split, subset=args.subset,
            samples=args.samples, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
            limit=args.limit, run_dir=Path(args.run_dir) if args.run_dir else None, resume=args.resume,
            backend=args.backend, sandbox=args.sandbox, prompt_mode=args.prompt_mode, seed=args.seed,
            concurrency=args.concurrency, timeout_s=args.timeout, swebench_dir=swebench_dir(args.swebench_dir),
            executor=args.executor, ray_address=args.ray_address, engine_replicas=args.engine_replicas,
            data_path=Path(args.data_path) if args.data_path else None,
            engine_options=_engine_options(args), progress=not args.json and sys.stderr.isatty(),
        )
        summary = evaluate(spec)
    except (ValueError, DatasetError, RunDirError, ExecutorError) as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print(json.dumps(summary.as_dict(), indent=1))
    else:
        scores = ", ".join(f"{k} {100 * v:.1f}%" for k, v in summary.pass_at_k.items())
        print(f"{summary.benchmark} ({summary.coverage}): {scores or 'no results'}; run folder {summary.run_dir}")
        for note in summary.notes:
            print(f"note: {note}")
    return 0


def run_complete_samples(args: argparse.Namespace) -> int:
    from evals.datasets import DatasetError
    from evals.official_samples import complete_samples

    try:
        done = complete_samples(Path(args.samples), args.benchmark, Path(args.out) if args.out else None)
    except (OSError, ValueError, KeyError, DatasetError) as exc:
        raise UserError(f"{args.samples}: {exc}") from exc
    if args.json:
        print(json.dumps({"path": str(done.path), "num_run": done.num_run, "num_filled": done.num_filled,
                          "num_tasks": done.num_tasks, "command": done.command}))
    else:
        print(done.note())
    return 0


def run_report(args: argparse.Namespace) -> int:
    from evals.report import ReportError, write_report

    try:
        md, png = write_report([Path(d) for d in args.run_dirs], Path(args.out))
    except ReportError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print(json.dumps({"markdown": str(md), "plot": str(png)}))
    else:
        print(md.read_text(), end="")
        print(f"wrote {md} and {png}")
    return 0


def run_canonical(args: argparse.Namespace) -> int:
    from evals import datasets
    from evals.benchmark_runner import exec_config
    from evals.canonical import check_canonical
    from evals.rundir import RunDir, RunDirError
    from evals.spec import EvalSpec
    from sandbox.executor import ExecutorError, make_executor

    try:
        if args.benchmark == "swebench":
            from codeloop.commands.swebench import run_swebench_canonical

            return run_swebench_canonical(args, swebench_dir(args.swebench_dir))
        if args.resume and not args.run_dir:
            raise ValueError("--resume needs the --run-dir to continue")
        tasks = datasets.load(args.benchmark, args.split, subset=args.subset)
        coverage = datasets.coverage(args.benchmark, args.subset, len(tasks))
        if args.limit and args.limit < len(tasks):
            tasks, coverage = tasks[: args.limit], f"{coverage}; limited to the first {args.limit}"
        spec = EvalSpec(args.benchmark, model="canonical", split=args.split, subset=args.subset, sandbox=args.sandbox,
                        concurrency=args.concurrency, timeout_s=args.timeout, executor=args.executor,
                        ray_address=args.ray_address, run_dir=Path(args.run_dir) if args.run_dir else None,
                        resume=args.resume, engine={"generator": "canonical solutions"})
        run_dir = RunDir(spec.run_dir, spec) if spec.run_dir else None
        if run_dir:
            run_dir.open()
        config = exec_config(spec)
        report = check_canonical(tasks, config, progress=not args.json and sys.stderr.isatty(), coverage=coverage,
                                 run_dir=run_dir, executor=make_executor(config.executor_config()))
    except (ValueError, datasets.DatasetError, RunDirError, ExecutorError) as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(f"{args.benchmark} ({coverage}): {len(report.passed)}/{report.num_tasks} canonical solutions pass")
        for task_id, why in report.failed.items():
            print(f"  FAIL {task_id}: {why}")
    return 0 if not report.unexpected else 1
