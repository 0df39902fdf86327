"""`codeloop scan FILE|-`, `codeloop scan index DIR --licence SPDX` (one project's tree) and
`codeloop scan index --projects` (the shipped index, from PyPI sdists): the security scanner (security/).

Exit status of ``codeloop scan``: 0 when no finding reaches ``--fail-on`` (default ``high``),
1 when one does, 2 on a usage error (unreadable file, bad flag).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.errors import UserError
from security.config import (
    CANDIDATES_PATH,
    DEFAULT_INDEX_PATH,
    DEFAULT_K,
    DEFAULT_MAX_PROJECTS_PER_HASH,
    DEFAULT_SDIST_CACHE,
    DEFAULT_W,
    ScanConfig,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``scan`` to the ``codeloop`` command line."""
    parser = subparsers.add_parser(
        "scan", help="scan code for risky calls, secrets, personal data and copied licensed code",
        description="codeloop scan FILE|- [--json]  |  codeloop scan index DIR --licence SPDX [--out PATH]  |  "
                    "codeloop scan index --projects [TSV] [--cache DIR]. "
                    "Exit status: 1 when a finding reaches --fail-on (default high), else 0.")
    parser.add_argument("target", help="file to scan, '-' for stdin, or 'index' to build a fingerprint index")
    parser.add_argument("dir", nargs="?", type=Path, help="(index) source tree to fingerprint")
    parser.add_argument("--json", action="store_true", help="print findings as JSON")
    parser.add_argument("--fail-on", choices=["low", "medium", "high", "never"], default="high")
    parser.add_argument("--filename", help="name to scan stdin as (its suffix picks the language)")
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX_PATH, help="fingerprint index to match against")
    parser.add_argument("--licence", help="(index) SPDX identifier of the indexed code")
    parser.add_argument("--out", type=Path, default=DEFAULT_INDEX_PATH, help="(index) output file")
    parser.add_argument("--name", help="(index DIR) the project as NAME-VERSION (default: DIR's name)")
    parser.add_argument("--projects", type=Path, nargs="?", const=CANDIDATES_PATH,
                        help="(index) build from the copyleft sdists among this candidate list (default: the shipped one)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_SDIST_CACHE, help="(index --projects) sdist cache")
    parser.add_argument("--max-projects-per-hash", type=int, default=DEFAULT_MAX_PROJECTS_PER_HASH,
                        help="(index) drop fingerprints found in more projects than this (common code)")
    parser.add_argument("--exclude", action="append", default=[], help="(index) glob of relative paths to skip")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="(index) tokens per k-gram")
    parser.add_argument("--w", type=int, default=DEFAULT_W, help="(index) winnowing window")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.target == "index":
        return _build_index(args)
    if args.dir is not None:
        raise UserError(f"unexpected argument {args.dir} (only 'scan index' takes a directory)")
    from security import Severity, scan

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


def _read_target(target: str, filename: str | None, max_chars: int = ScanConfig.max_chars) -> tuple[str, str | None]:
    """At most ``max_chars + 1`` characters of the file or stdin (one more than the scanner takes,
    so that it can say the input was cut): never the whole of an endless or huge input."""
    if target == "-":
        return sys.stdin.read(max_chars + 1), filename
    path = Path(target)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(max_chars + 1), filename or path.name
    except OSError as exc:
        raise UserError(f"cannot read {target}: {exc.strerror or exc}") from exc


def _build_index(args: argparse.Namespace) -> int:
    if args.k < 5 or args.w < 1 or args.max_projects_per_hash < 1:
        raise UserError("--k must be >= 5, --w >= 1 and --max-projects-per-hash >= 1")
    if args.projects is not None:
        from security.index_sources import build_shipped_index

        summary = build_shipped_index(args.projects, args.cache, args.out, k=args.k, w=args.w,
                                      max_projects_per_hash=args.max_projects_per_hash, console=_stderr_console())
    else:
        summary = _index_tree(args)
    print(json.dumps(summary) if args.json else f"indexed {summary['projects']} project(s), {summary['files']} files, "
          f"{summary['fingerprints']} fingerprints -> {args.out} ({summary['bytes']:,} bytes)")
    return 0


def _index_tree(args: argparse.Namespace) -> dict:
    if args.dir is None or not args.dir.is_dir():
        raise UserError("scan index needs a source directory: codeloop scan index DIR --licence SPDX "
                        "(or --projects to build the shipped index)")
    if not args.licence:
        raise UserError("scan index needs --licence SPDX (the licence of the indexed code)")
    from rich.progress import track

    from security.index import FingerprintIndex, Project
    from security.index_sources import tree_files

    name, _, version = (args.name or args.dir.name).rpartition("-")
    project = Project(name or version, version if name else "", args.licence)
    sources = list(tree_files(args.dir, project, args.exclude))
    if not sources:
        raise UserError(f"no *.py files under {args.dir}")
    index = FingerprintIndex.build(track(sources, description="fingerprinting", transient=True,
                                         console=_stderr_console()), k=args.k, w=args.w,
                                   max_projects_per_hash=args.max_projects_per_hash)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    index.save(args.out)
    return {"out": str(args.out), "projects": 1, "files": len(index.files), "fingerprints": int(len(index.hashes)),
            "bytes": args.out.stat().st_size, "licence": args.licence}


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)
