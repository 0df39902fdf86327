"""CLI: ``codeloop bench lsp`` (an editing session replayed through ``codeloop lsp``), ``codeloop bench infill``
(the same session as llama.vscode sends it to ``/infill``) and ``codeloop bench checked`` (block suggestions
with and without execution checks); registered under ``codeloop bench`` by
codeloop/commands/bench.py."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from codeloop.arguments import positive_int
from codeloop.errors import UserError
from inference.config import SPECULATIVE_METHODS, WEIGHT_QUANTS
from inference.fim import FIM_ORDERS


def register_lsp(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("lsp", help="replay an editing session through `codeloop lsp`")
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--engine-url", default=None)
    p.add_argument("--file", type=Path, default=None, help="file to type into (default: stdlib textwrap.py)")
    p.add_argument("--keystrokes", type=positive_int, default=None, help="stop after this many keystrokes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--context-chars", type=int, default=None, help="contextBudgetChars (default: the server's)")
    p.add_argument("--pause-every", type=int, default=0, help="pause after every N keystrokes (0: never)")
    p.add_argument("--pause-ms", type=int, default=1500, help="length of those pauses")
    p.add_argument("--weight-quant", default=None, choices=WEIGHT_QUANTS, help="weightQuant (default: the server's)")
    p.add_argument("--speculative", default=None,
                   help="speculative setting; a comma-separated list replays once per value, side by side "
                        "(e.g. none,ngram)")
    p.add_argument("--draft-model", default=None, help="draftModel for --speculative draft")
    p.add_argument("--fim-order", default=None, choices=FIM_ORDERS, help="fimOrder (default: the server's)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_lsp)


def run_lsp(args: argparse.Namespace) -> int:
    import asyncio
    from dataclasses import asdict

    from bench.editor_session import replay
    from bench.output import emit

    path = args.file or Path(textwrap.__file__)
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    extra = {"contextBudgetChars": args.context_chars, "snippetBudgetChars": args.context_chars // 4} \
        if args.context_chars else {}
    pause = (args.pause_every, args.pause_ms / 1000)
    if args.weight_quant:
        extra["weightQuant"] = args.weight_quant
    if args.draft_model:
        extra["draftModel"] = args.draft_model
    if args.fim_order:
        extra["fimOrder"] = args.fim_order
    methods = [m.strip() for m in (args.speculative or "").split(",") if m.strip()]
    if set(methods) - set(SPECULATIVE_METHODS):
        raise UserError(f"--speculative takes values of {SPECULATIVE_METHODS}, got {args.speculative!r}")
    reports = {}
    for method in methods or [None]:
        settings = {**extra, **({"speculative": method} if method else {})}
        reports[method or "default"] = asdict(asyncio.run(replay(path, args.model, args.engine_url, args.keystrokes,
                                                                 args.seed, settings, pause)))
    if len(reports) == 1:
        result = next(iter(reports.values()))
    else:
        result = {"configs": reports, **_side_by_side(reports)}
    if args.json or args.out:
        emit(result, args.out)
    else:
        for key, value in result.items():
            print(f"{key:26s} {value}")
    return 0 if all(r["unanswered"] == 0 for r in reports.values()) else 1


def _side_by_side(reports: dict[str, dict]) -> dict[str, dict]:
    """p50 latency ratios of the first configuration to each other one (higher: the other is faster)."""
    base_name, base = next(iter(reports.items()))
    out = {}
    for name, rep in list(reports.items())[1:]:
        ratios = {}
        for key in ("single_line", "multi_line", "engine_answers"):
            a, b = base[key].get("p50_ms"), rep[key].get("p50_ms")
            ratios[f"{key}_p50_ratio"] = a / b if a and b else None
        out[f"{name}_vs_{base_name}"] = ratios
    return out


def register_checked(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("checked", help="block suggestions with and without execution checks (latency, tests pass)")
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--limit", type=positive_int, default=None, help="at most this many functions")
    p.add_argument("--candidates", type=positive_int, default=4)
    p.add_argument("--deadline-ms", type=int, default=1500)
    p.add_argument("--max-checks", type=positive_int, default=5, help="functions with at most this many doctests")
    p.add_argument("--backend", default="bwrap", choices=("auto", "bwrap", "docker"))
    p.add_argument("--one-request", action="store_true",
                   help="all candidates in one request from the start (check.staged = false)")
    p.add_argument("--sandbox-only", action="store_true",
                   help="instead: no model, the canonical bodies as candidates: the time the checks alone take")
    p.add_argument("--index-files", type=positive_int, default=None,
                   help="instead: event-loop lag while a workspace of this many test files is indexed")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.set_defaults(func=run_checked)


def run_checked(args: argparse.Namespace) -> int:
    import asyncio

    from bench.checked import CheckedBenchSpec, check_latency, index_lag, load, run_bench
    from bench.output import emit
    from lsp.checks.executor import choose_backend

    if args.index_files:
        emit(asyncio.run(index_lag(args.index_files)), args.out)
        return 0
    name, why = choose_backend(args.backend)
    if name is None:
        raise UserError(f"bench checked needs a sandbox: {why}")
    spec = CheckedBenchSpec(args.model, args.limit, args.candidates, args.deadline_ms, args.max_checks, args.backend,
                            staged=not args.one_request)
    scenario = check_latency if args.sandbox_only else run_bench
    emit(asyncio.run(scenario(load(spec), spec) if args.sandbox_only else scenario(spec, load(spec))), args.out)
    return 0


def register_infill(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("infill", help="a typing session as llama.vscode sends it (/infill): codeloop serve under "
                                       "each FIM order vs llama-server with and without --spm-infill (JSON)")
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--file", type=Path, default=None, help="file to type into (default: stdlib textwrap.py)")
    p.add_argument("--keystrokes", type=positive_int, default=60, help="type this many characters")
    p.add_argument("--n-predict", type=positive_int, default=16)
    p.add_argument("--fim-order", default="spm,psm", help="comma-separated codeloop serve --fim-order values")
    p.add_argument("--weight-quant", default="hybrid_int8x8", choices=WEIGHT_QUANTS,
                   help="codeloop serve --weight-quant (default: the editor's)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--no-peer", action="store_true", help="skip llama-server")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.set_defaults(func=run_infill)


def run_infill(args: argparse.Namespace) -> int:
    from bench.infill_session import run
    from bench.output import emit

    path = args.file or Path(textwrap.__file__)
    orders = [o.strip() for o in args.fim_order.split(",") if o.strip()]
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    if not orders or set(orders) - set(FIM_ORDERS):
        raise UserError(f"--fim-order takes a comma-separated list of {FIM_ORDERS}, got {args.fim_order!r}")
    emit(run(args.model, path, args.keystrokes, args.n_predict, orders, ["--weight-quant", args.weight_quant],
             args.threads, not args.no_peer), args.out)
    return 0
