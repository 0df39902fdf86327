"""`codeloop bench engine|lora|serve|sandbox|executor|scan|lsp|checked|rollout`: every package's benchmark, JSON out.

Only the flags, their checks and the printing live here; each benchmark is a module of its package. The editor
benchmarks (`bench lsp`, `bench infill`, `bench checked`) come from codeloop/commands/bench_editor.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from codeloop.arguments import positive_int
from codeloop.commands import bench_editor
from codeloop.errors import UserError
from inference.config import DTYPES, PREFILL_QUANTS, PROMPT_ATTENTIONS, SPECULATIVE_METHODS, WEIGHT_QUANTS


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks (JSON output)")
    bsub = bench.add_subparsers(dest="bench_command", metavar="TARGET", required=True)
    for add in (_engine, _fim, _lora, _serve, _sandbox, _executor, _scan, bench_editor.register_lsp,
                bench_editor.register_infill, bench_editor.register_checked, _rollout):
        add(bsub)


def _engine(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("engine", help="engine vs HF transformers (and llama.cpp if installed)")
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="auto: bf16 where the CPU/GPU computes it (AVX-512-BF16, AMX, CUDA), else float32")
    p.add_argument("--weight-quant", default="auto", choices=WEIGHT_QUANTS,
                   help="weights (default auto: measured per CPU, cached; the JSON says which kernels ran)")
    p.add_argument("--prefill-quant", default="auto", choices=PREFILL_QUANTS,
                   help="prompt rows: dense, int8x8 or auto (the autotune's choice under --weight-quant auto)")
    p.add_argument("--prompt-attention", default="auto", choices=PROMPT_ATTENTIONS,
                   help="prompt rows' attention: native (our kernel), sdpa (torch's) or auto (measured)")
    p.add_argument("--decode-attention", default="auto", choices=PROMPT_ATTENTIONS,
                   help="generated rows' attention: native (our paged kernel), sdpa (torch's) or auto (measured)")
    p.add_argument("--scenarios", default="single,concurrent,keystroke,int8kv",
                   help="comma-separated subset of single,concurrent,keystroke,int8kv")
    p.add_argument("--quick", action="store_true", help="fewer requests and repeats (smoke run)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-peers", action="store_true", help="skip HF transformers / llama.cpp peers")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--json", action="store_true", help="print JSON (always on; kept for symmetry)")
    p.set_defaults(func=run_engine)


def run_engine(args: argparse.Namespace) -> int:
    from bench.engine import SCENARIOS, run_bench

    unknown = {s.strip() for s in args.scenarios.split(",") if s.strip()} - set(SCENARIOS)
    if unknown:
        raise UserError(f"unknown scenarios {sorted(unknown)}; choose from {sorted(SCENARIOS)}")
    return run_bench(args)


def _fim(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("fim", help="fresh FIM completions at the LSP's prompt sizes: speculation on/off vs "
                                    "llama-server /infill (JSON)")
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--weight-quant", default="auto", choices=WEIGHT_QUANTS)
    p.add_argument("--speculative", default="none,ngram",
                   help="comma-separated engine configurations to compare, the first is the baseline "
                        "(none, ngram, draft; with '+eager': decode steps not compiled, e.g. none,none+eager; "
                        "with '+dense' or '+int8x8': that prefill path, e.g. none+dense,none+int8x8; with '+attn-native' or "
                        "'+attn-sdpa': that prompt attention)")
    p.add_argument("--draft-model", default=None, help="draft model for the 'draft' configuration")
    p.add_argument("--source", default="email", help="folder or importable package to take cursors from")
    p.add_argument("--cursors", type=positive_int, default=16, help="cursors (half single-line, half blocks)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-peer", action="store_true", help="skip llama-server /infill")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.set_defaults(func=run_fim)


def run_fim(args: argparse.Namespace) -> int:
    from bench.fim import run_bench

    methods = [m.strip() for m in args.speculative.split(",") if m.strip()]
    bad = {m.split("+")[0] for m in methods} - set(SPECULATIVE_METHODS)
    bad |= {f for m in methods for f in m.split("+")[1:]
            if f not in ("eager", *PREFILL_QUANTS, *(f"attn-{a}" for a in PROMPT_ATTENTIONS))}
    if bad or not methods:
        raise UserError(f"--speculative takes a comma-separated list of {SPECULATIVE_METHODS}, got {args.speculative!r}")
    if any(m.startswith("draft") for m in methods) and not args.draft_model:
        raise UserError("--speculative draft needs --draft-model")
    args.speculative = ",".join(methods)
    return run_bench(args)


def _lora(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("lora", help="unmerged LoRA vs no adapter: prefill and decode tokens/s (JSON)")
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="auto: bf16 where the CPU/GPU computes it (AVX-512-BF16, AMX, CUDA), else float32")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.set_defaults(func=run_lora)


def run_lora(args: argparse.Namespace) -> int:
    from bench.lora import run_bench

    return run_bench(args)


def _serve(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("serve", help="shared server vs clients served one at a time (JSON)")
    p.add_argument("--model", default=None, help="catalog name / folder; default: the 0.5B if pulled, "
                   "else a random model in the 0.5B's shapes")
    p.add_argument("--clients", default="1,4,16", help="concurrency levels, comma separated")
    p.add_argument("--requests-per-client", type=positive_int, default=2)
    p.add_argument("--prompt-tokens", type=int, default=256)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="auto: bf16 where the CPU/GPU computes it (AVX-512-BF16, AMX, CUDA), else float32")
    p.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                   help="extra `codeloop serve` argument, repeatable (--serve-arg=--kv-dtype --serve-arg=int8)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from bench import serve as serve_bench
    from bench.output import emit

    try:
        levels = sorted({int(x) for x in args.clients.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--clients must be comma-separated integers, got {args.clients!r}") from None
    if not levels or min(levels) < 1:
        raise UserError("--clients needs positive integers")
    spec = serve_bench.BenchSpec(model=args.model, levels=tuple(levels), requests_per_client=args.requests_per_client,
                                 prompt_tokens=args.prompt_tokens, max_tokens=args.max_tokens, dtype=args.dtype,
                                 serve_args=tuple(args.serve_arg))
    result = serve_bench.run(spec, progress=not args.json)
    if args.json:
        emit(result)
    else:
        print(serve_bench.summary(result))
    return 0


def _sandbox(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("sandbox", help="runs/second per sandbox backend (JSON)")
    p.add_argument("--jobs", type=positive_int, default=40, help="jobs per warm backend")
    p.add_argument("--cold-jobs", type=int, default=8, help="jobs for docker-cold")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--backends", default="docker,docker-exec,docker-cold,bwrap,unsafe_subprocess")
    p.add_argument("--json", action="store_true", help="(output is always JSON)")
    p.set_defaults(func=run_sandbox)


def run_sandbox(args: argparse.Namespace) -> int:
    from bench.output import emit
    from bench.sandbox_throughput import bench_sandbox
    from codeloop.commands.sandbox import BACKEND_CHOICES

    if args.jobs < 1 or args.cold_jobs < 1 or args.concurrency < 1:
        raise UserError("--jobs, --cold-jobs and --concurrency must be >= 1")
    unknown = [b for b in args.backends.split(",") if b.strip() and b.strip() not in BACKEND_CHOICES[1:]]
    if unknown:
        raise UserError(f"unknown backend(s): {', '.join(unknown)}")
    emit(bench_sandbox(args))
    return 0


def _executor(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("executor", help="Ray executor: overhead per sandbox job vs local, 2 sandbox nodes vs 1, "
                        "on a Ray cluster started on this machine (needs codeloop[cluster]; JSON)")
    p.add_argument("--jobs", type=positive_int, default=24, help="HumanEval+ canonical jobs per phase")
    p.add_argument("--backend", default="bwrap", choices=("bwrap", "docker", "auto"))
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.set_defaults(func=run_executor)


def run_executor(args: argparse.Namespace) -> int:
    from bench.output import emit
    from sandbox.executor import ExecutorError
    from sandbox.ray_executor import import_ray

    try:
        import_ray()  # the one-line error naming the extra, before a cluster is started
    except ExecutorError as exc:
        raise UserError(str(exc)) from exc
    from bench.executor_overhead import ExecutorBenchConfig, bench_executors

    emit(bench_executors(ExecutorBenchConfig(jobs=args.jobs, backend=args.backend)), args.out)
    return 0


def _scan(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("scan", help="licence-match (held-out projects), detector and latency benchmarks")
    p.add_argument("--json", action="store_true", help="print the result as JSON (default: also JSON)")
    p.add_argument("--per-project", type=positive_int, default=30, help="functions per held-out copyleft project")
    p.add_argument("--per-package", type=positive_int, default=15, help="functions per permissive package / module")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "codeloop" / "scan",
                   help="where the indexed projects' sdists are (downloaded when missing)")
    p.add_argument("--index", type=Path, default=None, help="index to measure (default: the shipped one)")
    p.set_defaults(func=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    from bench import licence
    from bench.output import emit
    from bench.scan import detector_bench, latency_bench

    result = {
        "licence": licence.run(args.cache, args.per_project, args.per_package, args.seed, args.index),
        "detectors": detector_bench(),
        "latency": latency_bench(),
    }
    emit(result)
    return 0


def _rollout(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("rollout", help="RL rollout tokens/s and sandbox runs/s vs HF generate")
    p.add_argument("--config", type=Path, help="RL config (TOML/JSON); its model, rollout and sandbox settings")
    p.add_argument("--prompts", type=positive_int, default=4, help="tasks in the step (rollout.prompts_per_step)")
    p.add_argument("--threads", type=int, help="torch CPU threads (train.num_threads)")
    p.add_argument("--no-peers", action="store_true", help="skip the HF generate peers")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.add_argument("--json", action="store_true", help="print JSON (always on; kept for symmetry)")
    p.set_defaults(func=run_rollout)


def run_rollout(args: argparse.Namespace) -> int:
    from bench.output import emit
    from bench.rollout import rollout_bench
    from rl.config import ConfigError, load_config

    overrides = {"rollout.prompts_per_step": args.prompts, "train.num_threads": args.threads}
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    emit(rollout_bench(config, args.prompts, peers=not args.no_peers), args.out)
    return 0
