"""What the subcommands' parsers share: argument types (argparse ``type=`` callables) and defaults."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def positive_int(text: str) -> int:
    """A count that must be >= 1 (``--limit``, ``--samples``...): 0 or a negative number is a usage
    error, never "all" (``tasks[:-3]`` silently ran 161 of 164 tasks)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def swebench_dir(arg: str | None) -> Path:
    """``--swebench-dir``, else ``$CODELOOP_SWEBENCH_DIR``, else ``../shared/benchmarks/swebench`` from the repo."""
    return Path(arg or os.environ.get("CODELOOP_SWEBENCH_DIR") or REPO_ROOT.parent / "shared/benchmarks/swebench")
