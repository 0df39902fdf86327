"""CLI: ``codeloop tasks mine REPO``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.arguments import swebench_dir
from codeloop.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    t = subparsers.add_parser("tasks", help="repository FIM tasks checked by the repository's own tests")
    tsub = t.add_subparsers(dest="tasks_command", metavar="mine", required=True)
    m = tsub.add_parser("mine", help="mine FIM tasks from a repository (a folder or a SWE-bench instance id)")
    m.add_argument("repo", metavar="REPO", help="repository folder, or a SWE-bench instance id (swebench:<id>)")
    m.add_argument("--out", type=Path, help="tasks JSONL (default runs/tasks/<repo>.jsonl); a report goes beside it")
    mine_flags(m)
    m.add_argument("--json", action="store_true", help="print the report as JSON")
    m.set_defaults(func=run_mine)


def mine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python", type=Path, help="interpreter of a folder repository (default: its .venv, else this one)")
    p.add_argument("--seed", type=int, default=0, help="split and span choice seed")
    p.add_argument("--heldout", type=float, default=0.3, help="fraction of files held out")
    p.add_argument("--max-tests", type=int, default=8, help="covering tests kept per task")
    p.add_argument("--check-concurrency", type=int, default=2, help="sandboxed test runs at once")
    p.add_argument("--refresh", action="store_true", help="rebuild the cached coverage map and gold checks")
    p.add_argument("--swebench-dir", help="offline SWE-bench folder (default $CODELOOP_SWEBENCH_DIR or ../shared/...)")
    acceptance_flag(p)


ACCEPTANCE_HELP = ("the editor's acceptance log (LSP setting acceptanceLogPath, by default "
                   "$CODELOOP_HOME/acceptance.jsonl, i.e. ~/.cache/codeloop/acceptance.jsonl): its accepted "
                   "multi-line suggestions in tested functions under REPO become tasks too, gold-checked and "
                   "split by file like mined ones (default: none)")


def acceptance_flag(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--acceptance-log", type=Path, metavar="FILE", help=ACCEPTANCE_HELP)


def acceptance_log(path: Path | None) -> Path | None:
    """``--acceptance-log``, refused when it names no file (a typo would silently add nothing)."""
    if path is not None and not path.expanduser().is_file():
        raise UserError(f"--acceptance-log {path}: no such file")
    return path.expanduser() if path is not None else None


def mine_repo(args: argparse.Namespace, out: Path | None, quiet: bool):
    """Mine ``args.repo`` into ``out`` (default runs/tasks/<repo>.jsonl); ``mine`` writes the report beside it."""
    from evals.repo.miner import MineOptions, mine
    from evals.repo.target import TargetError, resolve_target

    accepted = acceptance_log(args.acceptance_log)
    try:
        target = resolve_target(args.repo, python=args.python, swebench_dir=swebench_dir(args.swebench_dir))
    except TargetError as exc:
        raise UserError(str(exc)) from exc
    out = out or Path("runs/tasks") / f"{target.name}.jsonl"
    options = MineOptions(out=out, seed=args.seed, heldout_fraction=args.heldout, max_tests=args.max_tests,
                          concurrency=args.check_concurrency, refresh=args.refresh,
                          progress=not quiet and sys.stderr.isatty(), acceptance_log=accepted)
    return mine(target, options)


def run_mine(args: argparse.Namespace) -> int:
    report = mine_repo(args, args.out, args.json)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
        return 0 if not report.reason else 1
    if report.reason:
        print(f"{report.repo}: {report.reason}")
        return 1
    counts = ", ".join(f"{split} {sum(k.values())} ({', '.join(f'{n} {kind}' for kind, n in sorted(k.items()))})"
                       for split, k in sorted(report.tasks.items()))
    skipped = sum(1 for why in report.files.values() if not why.endswith(" tasks"))
    print(f"{report.repo}: {counts or 'no tasks'}; {len(report.dropped)} dropped by the gold check; "
          f"{skipped} files skipped (reasons in {report.out}.report.json); {report.seconds['total']:.0f} s")
    if report.accepted:
        from evals.repo.accepted import made_task

        made = sum(map(made_task, report.accepted.values()))
        print(f"  accepted suggestions: {made} became tasks, {len(report.accepted) - made} did not (reasons in the report)")
    for path, why in report.collect_errors.items():
        print(f"  test file {path} does not import: {why}")
    print(f"wrote {report.out}")
    return 0
