"""`codeloop demo`: the end-to-end demo (codeloop/demo.py) on a catalog model, pulled first when needed."""

from __future__ import annotations

import argparse

from codeloop.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="end-to-end demo on the embedded model (language server, sandbox, scan)")
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from codeloop.commands.model import pull_with_progress
    from codeloop.demo import run_demo
    from inference.catalog import ModelError, resolve_model
    from inference.model_specs import CATALOG

    try:
        if args.model in CATALOG:
            pull_with_progress(args.model)
        model_path = resolve_model(args.model)
    except ModelError as exc:
        raise UserError(str(exc)) from None
    run_demo(args.model, model_path)
    return 0
