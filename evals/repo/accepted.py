"""Accepted editor suggestions as repository FIM tasks (acceptance telemetry -> the repo RL task source).

An accepted multi-line suggestion inside a function of a repository becomes a ``block`` FimTask: the
document the editor showed is ``prefix + suffix``, the accepted text is the gold ``middle``, and its tests
are the coverage map's passing tests that run the enclosing function (``CoverageMap.tests_for_lines``).
The miner (``mine`` with ``MineOptions.acceptance_log``) adds them to its own tasks and gold-checks them
the same way. NOTE: the map was made on the file as it was mined, so these tests are a good guess, not a
fact: the gold check (the accepted text spliced in must pass them) decides.

Every accepted event that gives no task gets a one-line reason; events not accepted are not task material.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Iterable

from evals.repo.source import functions, skip_reason
from evals.repo.task import FimTask, split_of
from lsp.acceptance_log import AcceptanceEvent, final_events
from sandbox.suite.coverage_map import CoverageMap

ORIGIN = "acceptance_event"
"""``FimTask.extra`` key of an accepted task: the event's key in the miner's report."""
MADE = "task "
"""How the miner's report (``MineReport.accepted``) begins the entry of an event that became a task."""


def made_task(why: str) -> bool:
    """Whether a ``MineReport.accepted`` entry is a task made (else the reason it gave none)."""
    return why.startswith(MADE)


def tasks_from_acceptance(events: list[AcceptanceEvent], root: str, cmap: CoverageMap, repo: str, source: str, *,
                          split: Callable[[str], str] = split_of,
                          pick_tests: Callable[[list[str]], tuple[str, ...]] = lambda t: tuple(sorted(t[:8])),
                          taken: Iterable[FimTask] = ()) -> tuple[list[FimTask], dict[str, str]]:
    """(tasks, event key -> one-line reason for each accepted event that gave none). ``split``: a file's
    split (the miner's by-file rule); ``pick_tests``: the tests a task keeps of its covering tests;
    ``taken``: tasks already made (a suggestion on the same lines of the same file is a duplicate)."""
    seen = {_lines_of(t): t.task_id for t in taken}
    tasks: list[FimTask] = []
    reasons: dict[str, str] = {}
    for e in final_events(events):
        if not e.accepted:
            continue
        key = event_key(e)
        made = _task(e, key, root, cmap, repo, source, split, pick_tests)
        if isinstance(made, FimTask) and _lines_of(made) in seen:
            made = f"the same lines as task {seen[_lines_of(made)]}"
        if isinstance(made, str):
            reasons[key] = made
        else:
            seen[_lines_of(made)] = made.task_id
            tasks.append(made)
    return tasks, reasons


def event_key(e: AcceptanceEvent) -> str:
    """How the miner's report names an event: its id, else its file and 1-based line."""
    return e.event_id or f"{e.path}:{(e.line or 0) + 1}"


def _lines_of(task: FimTask) -> tuple[str, int, int]:
    return task.path, task.first_line, task.last_line


def _task(e: AcceptanceEvent, key: str, root: str, cmap: CoverageMap, repo: str, source: str,
          split: Callable[[str], str], pick_tests: Callable[[list[str]], tuple[str, ...]]) -> FimTask | str:
    if not e.path or not _under(e.path, root):
        return f"outside the repository {root}" + (f" ({e.path})" if e.path else " (no file path)")
    rel = os.path.relpath(os.path.realpath(e.path), os.path.realpath(root)).replace(os.sep, "/")
    if e.language != "python" or not rel.endswith(".py"):
        return f"not a Python file ({rel})"
    why = skip_reason(rel)
    if why is not None:
        return f"{rel}: {why}"
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
    tests = cmap.tests_for_lines(rel, range(fn.body_start, fn.end + 1))
    if not tests:
        return f"no passing test runs {rel}::{fn.qualname}"
    return FimTask(
        task_id=f"{repo}:{rel}:accepted:{first}:{e.character or 0}", repo=repo, source=source, path=rel,
        kind="block", function=fn.qualname, line=first - 1, character=e.character or 0, prefix=e.prefix,
        middle=middle, suffix=e.suffix, tests=pick_tests(tests), num_covering_tests=len(tests),
        split=split(rel), first_line=first, last_line=last, repo_key=cmap.key, commit=cmap.commit,
        extra={ORIGIN: key, "acceptance_id": e.event_id, "adapter": e.adapter})


def _under(path: str, root: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(root).rstrip(os.sep) + os.sep)
