"""`codeloop doctor [--json] [--url URL]`: check this machine's setup; exit 1 when a check finds an error."""

from __future__ import annotations

import argparse
import json
import os

STATUS_MARK = {"ok": "[ok]   ", "info": "[info] ", "warn": "[warn] ", "error": "[ERROR]"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="check Python, torch, CPU, sandbox, models, editors and the server")
    p.add_argument("--url", help="a codeloop serve to check (default: the shared server, if one runs)")
    p.add_argument("--api-key", default=None, help="key of that server (default $CODELOOP_API_KEY)")
    p.add_argument("--model", default=None, help="model whose shared server to look for (default: the catalog's)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from codeloop.doctor import ERROR, as_json, run_checks

    checks = run_checks(args.url, args.api_key or os.environ.get("CODELOOP_API_KEY") or None, args.model)
    if args.json:
        print(json.dumps(as_json(checks), indent=1))
    else:
        for check in checks:
            print(f"{STATUS_MARK[check.status]} {check.name:8} {check.detail}")
            if check.fix:
                print(f"{'':17}-> {check.fix}")
    return 1 if any(c.status == ERROR for c in checks) else 0
