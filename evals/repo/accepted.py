"""Accepted editor suggestions as repository FIM tasks (acceptance telemetry -> the repo RL task source).

An accepted multi-line suggestion inside a function of a repository becomes a ``block`` FimTask: the
document the editor showed is ``prefix + suffix``, the accepted text is the gold ``middle``, and its tests
are the coverage map's passing tests that run the enclosing function (``CoverageMap.tests_for_lines``).
NOTE: the map was made on the file as it was mined, so these tests are a good guess, not a fact: run the
miner's gold check (the accepted text spliced in must pass them) before training on the tasks.
"""

from __future__ import annotations

import ast
import os

from evals.repo.source import functions
from evals.repo.task import FimTask, split_of
from lsp.acceptance_log import AcceptanceEvent, final_events
from sandbox.suite.coverage_map import CoverageMap


def tasks_from_acceptance(events: list[AcceptanceEvent], root: str, cmap: CoverageMap | None, repo: str,
                          source: str) -> tuple[list[FimTask], list[str]]:
    """(tasks, one-line reasons for the accepted events of ``root`` that did not become one)."""
    tasks: list[FimTask] = []
    skipped: list[str] = []
    for e in final_events(events):
        if not e.accepted or not e.path or not _under(e.path, root):
            continue
        made = _task(e, root, cmap, repo, source)
        if isinstance(made, str):
            skipped.append(f"{e.event_id or e.path}: {made}")
        else:
            tasks.append(made)
    return tasks, skipped


def _task(e: AcceptanceEvent, root: str, cmap: CoverageMap | None, repo: str, source: str) -> FimTask | str:
    middle = e.completion
    if "\n" not in middle.strip("\n"):
        return "single-line suggestion"
    text = e.prefix + middle + e.suffix
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return f"the file with the suggestion does not parse (line {exc.lineno})"
    first = e.prefix.count("\n") + 1
    last = first + middle.rstrip("\n").count("\n")
    inside = [f for f in functions(tree) if f.node.lineno < first and last <= f.end]
    if not inside:
        return "not inside a function"
    fn = max(inside, key=lambda f: f.node.lineno)  # the innermost
    rel = os.path.relpath(e.path, root).replace(os.sep, "/")
    if cmap is None:
        return "no coverage map of the repository (run `codeloop tasks mine` first)"
    tests = cmap.tests_for_lines(rel, range(fn.body_start, fn.end + 1))
    if not tests:
        return f"no passing test runs {fn.qualname}"
    return FimTask(
        task_id=f"{repo}:{rel}:accepted:{first}:{e.character or 0}", repo=repo, source=source, path=rel,
        kind="block", function=fn.qualname, line=first - 1, character=e.character or 0, prefix=e.prefix,
        middle=middle, suffix=e.suffix, tests=tuple(sorted(tests[:8])), num_covering_tests=len(tests),
        split=split_of(rel), first_line=first, last_line=last, repo_key=cmap.key, commit=cmap.commit,
        extra={"acceptance_id": e.event_id, "adapter": e.adapter})


def _under(path: str, root: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(root).rstrip(os.sep) + os.sep)
