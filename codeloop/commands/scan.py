"""`codeloop scan FILE|-` and `codeloop scan index DIR --licence SPDX`: the security scanner (security/).

Exit status of ``codeloop scan``: 0 when no finding reaches ``--fail-on`` (default ``high``),
1 when one does, 2 on a usage error (unreadable file, bad flag).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.errors import UserError
from security.config import DEFAULT_INDEX_PATH, DEFAULT_K, DEFAULT_W


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``scan`` to the ``codeloop`` command line."""
    parser = subparsers.add_parser(
        "scan", help="scan code for risky calls, secrets, personal data and copied licensed code",
        description="codeloop scan FILE|- [--json]  |  codeloop scan index DIR --licence SPDX [--out PATH]. "
                    "Exit status: 1 when a finding reaches --fail-on (default high), else 0.")
    parser.add_argument("target", help="file to scan, '-' for stdin, or 'index' to build a fingerprint index")
    parser.add_argument("dir", nargs="?", type=Path, help="(index) source tree to fingerprint")
    parser.add_argument("--json", action="store_true", help="print findings as JSON")
    parser.add_argument("--fail-on", choices=["low", "medium", "high", "never"], default="high")
    parser.add_argument("--filename", help="name to scan stdin as (its suffix picks the language)")
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX_PATH, help="fingerprint index to match against")
    parser.add_argument("--licence", help="(index) SPDX identifier of the indexed code")
    parser.add_argument("--out", type=Path, default=DEFAULT_INDEX_PATH, help="(index) output file")
    parser.add_argument("--name", help="(index) project label stored with each path (default: DIR's name)")
    parser.add_argument("--exclude", action="append", default=[], help="(index) glob of relative paths to skip")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="(index) tokens per k-gram")
    parser.add_argument("--w", type=int, default=DEFAULT_W, help="(index) winnowing window")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.target == "index":
        return _build_index(args)
    if args.dir is not None:
        raise UserError(f"unexpected argument {args.dir} (only 'scan index' takes a directory)")
    from security import ScanConfig, Severity, scan

    text, filename = _read_target(args.target, args.filename)
    findings = scan(text, filename=filename, config=ScanConfig(index_path=args.index))
    if args.json:
        print(json.dumps({"file": filename or "-", "findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        for f in findings:
            print(f"{filename or '-'}:{f.start_line + 1}:{f.start_col + 1}: {f.severity.value} {f.rule_id} {f.message}")
        print(f"{len(findings)} finding(s)", file=sys.stderr)
    if args.fail_on == "never":
        return 0
    floor = Severity(args.fail_on).rank
    return int(any(f.severity.rank >= floor and f.kind.value != "error" for f in findings))


def _read_target(target: str, filename: str | None) -> tuple[str, str | None]:
    if target == "-":
        return sys.stdin.read(), filename
    path = Path(target)
    try:
        return path.read_bytes().decode("utf-8", errors="replace"), filename or path.name
    except OSError as exc:
        raise UserError(f"cannot read {target}: {exc.strerror or exc}") from exc


def _build_index(args: argparse.Namespace) -> int:
    if args.dir is None or not args.dir.is_dir():
        raise UserError("scan index needs a source directory: codeloop scan index DIR --licence SPDX")
    if not args.licence:
        raise UserError("scan index needs --licence SPDX (the licence of the indexed code)")
    if args.k < 5 or args.w < 1:
        raise UserError("--k must be >= 5 and --w >= 1")
    from rich.progress import track

    from security.index import FingerprintIndex, iter_sources

    sources = list(iter_sources(args.dir, args.licence, args.name or args.dir.name, args.exclude))
    if not sources:
        raise UserError(f"no *.py files under {args.dir}")
    index = FingerprintIndex.build(track(sources, description="fingerprinting", transient=True,
                                         console=_stderr_console()), k=args.k, w=args.w)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    index.save(args.out)
    summary = {"out": str(args.out), "files": len(index.files), "fingerprints": int(len(index.hashes)),
               "bytes": args.out.stat().st_size, "licence": args.licence}
    print(json.dumps(summary) if args.json else f"indexed {summary['files']} files, "
          f"{summary['fingerprints']} fingerprints -> {args.out} ({summary['bytes']:,} bytes)")
    return 0


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)
