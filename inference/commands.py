"""`codeloop model …` and `codeloop bench …` (the bench group gathers every package's benchmarks)."""

from __future__ import annotations

import argparse
import importlib
import json

from inference import catalog
from inference.cli import UserError

BENCH_PROVIDERS = (
    "inference.bench",
    "inference.bench_lora",
    "inference.serve_commands",
    "sandbox.commands",
    "security.commands",
    "lsp.commands",
    "rl.bench",
)


def register(sub: argparse._SubParsersAction) -> None:
    _register_model(sub)
    _register_bench(sub)


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def _register_model(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="list and pull the embedded models")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    lst = msub.add_parser("list", help="catalog models and whether they are pulled")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=_model_list)
    pull = msub.add_parser("pull", help="download, verify (sha256) and convert a catalog model")
    pull.add_argument("name", nargs="?", default=catalog.DEFAULT_MODEL)
    pull.add_argument("--force", action="store_true", help="fetch again even if the cache verifies")
    pull.add_argument("--json", action="store_true", help="print JSON")
    pull.set_defaults(func=_model_pull)


def _model_list(args: argparse.Namespace) -> int:
    rows = catalog.list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "pulled", "description")
    for row in rows:
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(name, "yes" if row["pulled"] else "no", row["description"])
    Console().print(table)
    return 0


def _model_pull(args: argparse.Namespace) -> int:
    try:
        folder = pull_with_progress(args.name, force=args.force, quiet=args.json)
    except catalog.ModelError as exc:
        raise UserError(str(exc)) from None
    manifest = catalog.read_manifest(folder) or {}
    if args.json:
        print(json.dumps({"name": args.name, "path": str(folder / catalog.HF_DIR),
                          "gguf_sha256": manifest.get("gguf_sha256")}))
    else:
        print(f"{args.name}: verified, ready at {folder / catalog.HF_DIR}")
    return 0


def pull_with_progress(name: str, *, force: bool = False, quiet: bool = False):
    """Pull a catalog model showing a rich progress bar per stage (nothing when ``quiet``)."""
    if quiet:
        return catalog.pull(name, force=force)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{name}: {stage}", total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        return catalog.pull(name, force=force, progress=report)


def _register_bench(sub: argparse._SubParsersAction) -> None:
    providers = [m for m in map(_optional, BENCH_PROVIDERS) if m is not None and hasattr(m, "register_bench")]
    if not providers:
        return
    bench = sub.add_parser("bench", help="benchmarks (JSON output)")
    bsub = bench.add_subparsers(dest="bench_command", metavar="TARGET", required=True)
    for module in providers:
        module.register_bench(bsub)
