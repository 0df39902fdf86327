"""`codeloop model list|pull`: the model catalog (inference/catalog.py) and the promoted per-repository
adapters (inference/repo_adapters.py)."""

from __future__ import annotations

import argparse
import json

from codeloop.errors import UserError
from inference import catalog, model_specs, repo_adapters


def register(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="list and pull the embedded models")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    lst = msub.add_parser("list", help="catalog models and whether they are pulled, and per-repository adapters")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=_model_list)
    pull = msub.add_parser("pull", help="download, verify (sha256) and convert a catalog model")
    pull.add_argument("name", nargs="?", default=model_specs.DEFAULT_MODEL)
    pull.add_argument("--force", action="store_true", help="fetch again even if the cache verifies")
    pull.add_argument("--json", action="store_true", help="print JSON")
    pull.set_defaults(func=_model_pull)


def _model_list(args: argparse.Namespace) -> int:
    rows = [{**row, "kind": "model"} for row in catalog.list_models()]
    adapters = repo_adapters.list_repo_adapters()
    if args.json:
        rows += [{"name": a.name, "kind": "repo_adapter", "default": False, "pulled": True,
                  "description": f"LoRA adapter for the repository {a.root}", **a.to_json()} for a in adapters]
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "pulled", "description")
    for row in rows:
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(name, "yes" if row["pulled"] else "no", row["description"])
    Console().print(table)
    if adapters:  # NOTE: plain lines, not a table: a table truncates long roots in a narrow terminal
        print("\nper-repository adapters (documents under ROOT are completed with model=NAME):")
        for a in adapters:
            metrics = "".join(f", {k}={v:.3g}" if isinstance(v, float) else f", {k}={v}" for k, v in a.metrics.items())
            print(f"  {a.name}  {a.root}  (base {a.base_model}, promoted {a.promoted_at}{metrics})")
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
