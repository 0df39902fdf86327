"""`codeloop`: the one command-line entry point.

Each area contributes its subcommands through ``codeloop/commands/<area>.py`` exposing
``register(subparsers) -> None``; a subcommand sets ``func(args) -> int``. A user mistake raises
``UserError`` and is printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import sys

from codeloop import __version__
from codeloop.commands import bench, demo, doctor, lsp, model, sandbox, scan, serve, tasks, train
from codeloop.commands import eval as evaluate
from codeloop.errors import UserError

COMMAND_MODULES = (model, bench, demo, serve, lsp, sandbox, scan, evaluate, tasks, train, doctor)
"""In the order ``codeloop --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codeloop",
        description="Self-hosted code assistant: engine, language server, sandbox, evals, RL loop.",
    )
    parser.add_argument("--version", action="version", version=f"codeloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"codeloop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codeloop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
