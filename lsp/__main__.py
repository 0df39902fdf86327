"""``python -m lsp ...``: the lsp subcommands without importing the other packages' CLIs (fast start)."""

from __future__ import annotations

import argparse
import sys

from inference.cli import UserError
from lsp.commands import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsp")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"codeloop: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
