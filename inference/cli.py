"""`codeloop`: the one command-line entry point.

Each package contributes its subcommands through ``<package>/commands.py`` exposing
``register(subparsers) -> None``; a subcommand sets ``func(args) -> int``. A user mistake raises
``UserError`` and is printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "inference.commands",
    "inference.demo",
    "inference.serve_commands",
    "lsp.commands",
    "sandbox.commands",
    "security.commands",
    "evals.commands",
    "rl.commands",
)


class UserError(Exception):
    """A mistake the user can fix (bad path, unknown model, bad flag value): shown as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codeloop",
        description="Self-hosted code assistant: engine, language server, sandbox, evals, RL loop.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that package has no commands yet
                continue
            raise
        if hasattr(module, "register"):
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
