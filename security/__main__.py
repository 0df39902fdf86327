"""`python -m security ARGS` = `codeloop scan ARGS`; `python -m security bench ARGS` =
`codeloop bench scan ARGS`. Lets the scanner run before (or without) the main CLI wiring."""

import argparse
import sys

from .commands import register, register_bench


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m security")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    register_bench(sub.add_parser("bench").add_subparsers(dest="bench", required=True))
    args = parser.parse_args(["bench", "scan", *argv[1:]] if argv[:1] == ["bench"] else ["scan", *argv])
    return int(args.func(args) or 0)


sys.exit(main(sys.argv[1:]))
