"""CLI: ``codeloop eval fim [TASKS | --repo REPO]`` and ``codeloop eval fim-report RUN_DIR...``
(registered under ``codeloop eval`` by codeloop/commands/eval.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.arguments import swebench_dir
from codeloop.commands.tasks import mine_flags, mine_repo
from codeloop.errors import UserError


def register(eval_subparsers: argparse._SubParsersAction) -> None:
    f = eval_subparsers.add_parser("fim", help="FIM tasks of a repository through the editor's completion path")
    f.add_argument("tasks", nargs="?", type=Path, help="tasks JSONL from `codeloop tasks mine`")
    f.add_argument("--repo", help="mine this repository first (folder or SWE-bench id) and evaluate its tasks")
    mine_flags(f)
    engine = f.add_mutually_exclusive_group()
    engine.add_argument("--model", help="in-process engine model (default qwen2.5-coder-0.5b-instruct)")
    engine.add_argument("--engine-url", help="a running `codeloop serve` (the language server's HTTP client)")
    engine.add_argument("--infill-url", help="a running llama.cpp llama-server: the /infill peer (see --infill-client)")
    f.add_argument("--infill-client", choices=("llama.vscode", "raw"), default="llama.vscode",
                   help="with --infill-url: 'llama.vscode' (default) sends llama.vscode's request (n_indent, "
                        "t_max_predict_ms, its samplers) and scores the ghost text it would show (trailing blank "
                        "lines cut, repeats of the document discarded, first line only with text right of the "
                        "cursor); 'raw' scores the untrimmed reply")
    f.add_argument("--infill-t-max-predict-ms", type=int, default=500, metavar="MS",
                   help="with --infill-client llama.vscode: its t_max_predict_ms (default 500, the extension's; "
                        "generation stops at the first new line after MS ms, so the figure depends on the "
                        "machine's speed; 0: no time limit)")
    f.add_argument("--split", default="heldout", choices=["heldout", "train", "all"])
    f.add_argument("--kinds", default="body,block,line", help="comma-separated: body,block,line")
    f.add_argument("--per-kind", type=int, help="at most this many tasks of each kind (stable choice)")
    f.add_argument("--limit", type=int)
    f.add_argument("--label", default="", help="name of the run in reports")
    f.add_argument("--settings", default="{}", help="language-server settings as JSON (e.g. '{\"maxLines\": 8}')")
    f.add_argument("--no-checks", action="store_true", help="skip running the tests (exact match and similarity only)")
    f.add_argument("--num-threads", type=int, help="in-process engine threads")
    f.add_argument("--kv-dtype", choices=("auto", "int8"), default=None,
                     help="KV cache of the in-process engine (int8: half the memory)")
    f.add_argument("--concurrency", type=int, default=2, help="completion requests in flight")
    f.add_argument("--run-dir", type=Path, help="default runs/fim-<tasks>-<model>-<time>")
    f.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=run_fim)

    r = eval_subparsers.add_parser("fim-report", help="`eval fim` runs side by side (deltas against the first)")
    r.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    r.add_argument("--out", type=Path, default=Path("fim-report"))
    r.set_defaults(func=run_fim_report)


def run_fim(args: argparse.Namespace) -> int:
    from evals.repo.completions import EngineChoice
    from evals.repo.fim import FimEvalSpec, default_run_dir, evaluate_fim
    from evals.repo.spans import KINDS
    from evals.rundir import RunDirError
    from lsp.engine_client import EngineError

    if (args.tasks is None) == (args.repo is None):
        raise UserError("give a tasks file or --repo (not both)")
    tasks_file = args.tasks
    if args.repo:
        report = mine_repo(args, None, args.json)
        if report.reason:
            raise UserError(f"{report.repo}: {report.reason}")
        tasks_file = Path(report.out)
    if not tasks_file.is_file():
        raise UserError(f"no such tasks file: {tasks_file}")
    try:
        engine = EngineChoice(model=None if args.engine_url or args.infill_url else
                              (args.model or "qwen2.5-coder-0.5b-instruct"),
                              engine_url=args.engine_url, infill_url=args.infill_url,
                              engine_options=_peer_options(args) if args.infill_url else _engine_options(args))
        kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        if not set(kinds) <= set(KINDS):
            raise ValueError(f"--kinds takes {', '.join(KINDS)}, got {args.kinds!r}")
        spec = FimEvalSpec(tasks_file, engine, args.run_dir or default_run_dir(engine, tasks_file),
                           split=None if args.split == "all" else args.split, kinds=kinds, per_kind=args.per_kind,
                           limit=args.limit, label=args.label, settings=json.loads(args.settings),
                           checks=not args.no_checks, concurrency=args.concurrency,
                           check_concurrency=args.check_concurrency, resume=args.resume,
                           swebench_dir=swebench_dir(args.swebench_dir), progress=not args.json and sys.stderr.isatty())
        summary = evaluate_fim(spec)
    except (ValueError, RunDirError, EngineError) as exc:
        raise UserError(str(exc).splitlines()[0]) from exc
    if args.json:
        print(json.dumps(summary.as_dict(), indent=1))
    else:
        print((Path(spec.run_dir) / "report.md").read_text(), end="")
        print(f"run folder {spec.run_dir}")
    return 0


def run_fim_report(args: argparse.Namespace) -> int:
    from evals.repo.fim_report import FimReportError, compare

    try:
        md, _ = compare(args.run_dirs, args.out)
    except FimReportError as exc:
        raise UserError(str(exc)) from exc
    print(md.read_text(), end="")
    print(f"wrote {md}")
    return 0


def _peer_options(args: argparse.Namespace) -> dict:
    """The /infill peer's client settings (evals.repo.infill.PeerOptions fields)."""
    return {"client": args.infill_client, "t_max_predict_ms": args.infill_t_max_predict_ms}


def _engine_options(args: argparse.Namespace) -> dict:
    """The in-process engine the language server builds from the same settings (weights, KV cache,
    speculation: ``lsp.server.engine_options``), with the flags' threads and KV cache dtype."""
    from evals.repo.fim import lsp_settings
    from lsp.server import engine_options

    overrides = json.loads(args.settings)
    if args.kv_dtype:
        overrides["kv_dtype"] = args.kv_dtype
    options = engine_options(lsp_settings(overrides))
    if args.num_threads:
        options["num_threads"] = args.num_threads
    return options
