"""`codeloop scan FILE|-` and `codeloop scan index DIR --licence SPDX`; `codeloop bench scan`.

Exit status of ``codeloop scan``: 0 when no finding reaches ``--fail-on`` (default ``high``),
1 when one does, 2 on a usage error (unreadable file, bad flag).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import DEFAULT_INDEX_PATH, ScanConfig
from .finding import Severity
from .fingerprint import DEFAULT_K, DEFAULT_W
from .index import FingerprintIndex, iter_sources
from .scanner import scan


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


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add ``scan`` to ``codeloop bench``."""
    parser = bench_subparsers.add_parser("scan", help="licence-match, detector and latency benchmarks")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (default: also JSON)")
    parser.add_argument("--functions", type=int, default=200, help="functions per licence-bench set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "codeloop" / "scan",
                        help="where the pylint sdist is downloaded and unpacked")
    parser.add_argument("--project", type=Path, help="an unpacked copyleft sdist to use instead of pylint")
    parser.set_defaults(func=_bench)


def _user_error(message: str) -> Exception:
    try:
        from inference.cli import UserError
    except ImportError:  # the scan package also runs without the rest of codeloop
        return SystemExit(f"codeloop: error: {message}")
    return UserError(message)


def _run(args: argparse.Namespace) -> int:
    if args.target == "index":
        return _build_index(args)
    if args.dir is not None:
        raise _user_error(f"unexpected argument {args.dir} (only 'scan index' takes a directory)")
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
        raise _user_error(f"cannot read {target}: {exc.strerror or exc}") from exc


def _build_index(args: argparse.Namespace) -> int:
    if args.dir is None or not args.dir.is_dir():
        raise _user_error("scan index needs a source directory: codeloop scan index DIR --licence SPDX")
    if not args.licence:
        raise _user_error("scan index needs --licence SPDX (the licence of the indexed code)")
    if args.k < 5 or args.w < 1:
        raise _user_error("--k must be >= 5 and --w >= 1")
    from rich.progress import track

    sources = list(iter_sources(args.dir, args.licence, args.name or args.dir.name, args.exclude))
    if not sources:
        raise _user_error(f"no *.py files under {args.dir}")
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


def _bench(args: argparse.Namespace) -> int:
    from .bench import PYLINT, detector_bench, fetch_sdist, latency_bench, licence_bench

    project = args.project or fetch_sdist(PYLINT, args.cache)
    result = {
        "project": project.name,
        "licence": licence_bench(project, args.functions, args.seed),
        "detectors": detector_bench(),
        "latency": latency_bench(),
    }
    print(json.dumps(result, indent=2))
    return 0
