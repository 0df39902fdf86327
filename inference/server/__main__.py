"""``python -m inference.server [serve flags]``: the same as ``codeloop serve`` (used by the launcher,
so a shared server starts whatever the CLI wiring)."""

from __future__ import annotations

import argparse
import sys

from inference.cli import UserError
from inference.serve_commands import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.server")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"codeloop serve: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
