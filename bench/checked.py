"""``codeloop bench checked``: block suggestions with and without execution checks, side by side.

The scenario: HumanEval functions whose docstrings carry 1-5 doctest examples, cursor on the empty line
after the docstring, as an editor sends it. For each function, in one process with one engine and the
same prompt, each from an empty prefix cache: the unchecked suggestion (today's path: greedy) and the checked
one (the greedy candidate, then, when it fails, k - 1 sampled ones; each run against the docstring's doctests
in the sandbox). Reported: the latency the checks
add (what the editor waits for the shown suggestion, and for the final choice), and the tests-pass rate
of what is shown on the benchmark's own hidden tests (which the checks never see).
Requests alternate unchecked / checked so that machine noise falls on both; the first two functions
warm up and are left out of the latency figures.

``check_latency`` (``--sandbox-only``): no model; each function's canonical body as k distinct candidates
(a comment tells them apart) streamed at once, so the time to the shown suggestion is the checks alone:
the sandbox runs of k candidates against the function's 1-5 doctests.

``index_lag`` (``--index-files N``): how late the language server's event loop runs while the workspace
test index of N test files builds (the keystroke path runs on that loop), against the same loop idle.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.output import machine_info
from evals.task import Task
from lsp.checks.checker import Checker
from lsp.checks.finder import find_checks
from lsp.completer import Completer
from lsp.config import CheckSettings, Settings
from lsp.inprocess_client import InProcessClient
from lsp.percentile import percentile
from lsp.suggestion import Document

WARMUP = 2


@dataclass(frozen=True)
class CheckedBenchSpec:
    model: str = "qwen2.5-coder-0.5b-instruct"
    limit: int | None = None
    candidates: int = 4
    deadline_ms: int = 1500
    max_checks: int = 5
    backend: str = "bwrap"
    staged: bool = True


def document(task: Task) -> tuple[str, int]:
    """The editor's text (the prompt, then an indented empty line) and the cursor's line."""
    text = task.prompt.rstrip("\n") + "\n    \n"
    return text, text.count("\n") - 1


def doctest_tasks(tasks: list[Task], max_checks: int) -> list[Task]:
    """The tasks whose function has 1..max_checks doctest examples (the only checks it gets here)."""
    out = []
    for task in tasks:
        text, line = document(task)
        found = find_checks(f"/bench/{task.entry_point}.py", text, line, 4)
        if found is not None and 1 <= len(found.checks) <= max_checks:
            out.append(task)
    return out


def passes(task: Task, completion: str) -> bool:
    """The benchmark's hidden tests on the prompt with ``completion`` typed at the cursor."""
    from sandbox.job_runner import run

    result = run(task.prompt.rstrip("\n") + "\n    " + completion + "\n", list(task.tests), backend="bwrap")
    return result.passed


async def _pair(task: Task, plain: Completer, checked: Completer, fresh: Any) -> dict[str, Any]:
    """Both requests from a fresh prompt (``fresh()`` empties the prefix cache first): the checked one must not
    reuse the prompt the unchecked one just computed, as an editor's first request for a cursor cannot."""
    text, line = document(task)
    doc = Document(f"file:///bench/{task.entry_point}.py", f"/bench/{task.entry_point}.py", text)
    await fresh()
    t0 = time.perf_counter()
    unchecked = await plain.complete(doc, line, 4)
    unchecked_ms = (time.perf_counter() - t0) * 1000
    await fresh()
    t0 = time.perf_counter()
    done = await checked.complete(doc, line, 4, checked=True)
    final_ms = (time.perf_counter() - t0) * 1000
    note = done.check
    return {
        "task_id": task.task_id, "unchecked_ms": round(unchecked_ms, 1), "checked_shown_ms": round(done.shown_ms, 1),
        "checked_generation_ms": round(done.generation_ms, 1),
        "checked_final_ms": round(final_ms, 1), "num_checks": note.verdict.num_checks if note and note.verdict else None,
        "check": note.summary() if note else None, "marked_at_deadline": bool(note and not note.changed and done.shown_ms),
        "unchecked_pass": await asyncio.to_thread(passes, task, unchecked.text),
        "shown_pass": await asyncio.to_thread(passes, task, done.shown),
        "checked_pass": await asyncio.to_thread(passes, task, done.text),
        "shown_passed_checks": bool(note and note.verdict and note.verdict.passed),
    }


async def run_bench(spec: CheckedBenchSpec, tasks: list[Task]) -> dict[str, Any]:
    client = InProcessClient(spec.model)
    client.start()
    settings = Settings().merged({"debounceMs": 0})
    checks = CheckSettings(enabled=True, candidates=spec.candidates, deadline_ms=spec.deadline_ms, backend=spec.backend,
                           staged=spec.staged)
    checker = Checker(None, checks)
    plain, checked = Completer(client, settings), Completer(client, settings, None, checker)
    engine = await client.engine()

    async def fresh() -> None:
        await asyncio.to_thread(engine.call, lambda e: e.reset_prefix_cache())

    rows = []
    try:
        for task in tasks:
            rows.append(await _pair(task, plain, checked, fresh))
    finally:
        checker.close()
        await client.aclose()
    return {"spec": asdict(spec), "machine": machine_info(), "num_tasks": len(rows), "summary": summarize(rows),
            "tasks": rows}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    timed = rows[WARMUP:] if len(rows) > WARMUP else rows
    added_shown = [r["checked_shown_ms"] - r["unchecked_ms"] for r in timed]
    added_final = [r["checked_final_ms"] - r["unchecked_ms"] for r in timed]
    n = max(1, len(rows))
    return {
        "unchecked_pass_rate": sum(r["unchecked_pass"] for r in rows) / n,
        "checked_pass_rate": sum(r["checked_pass"] for r in rows) / n,
        "shown_at_deadline_pass_rate": sum(r["shown_pass"] for r in rows) / n,
        "p50_unchecked_ms": percentile([r["unchecked_ms"] for r in timed], 0.5),
        "p50_checked_shown_ms": percentile([r["checked_shown_ms"] for r in timed], 0.5),
        "p50_added_shown_ms": percentile(added_shown, 0.5), "p95_added_shown_ms": percentile(added_shown, 0.95),
        "p50_added_final_ms": percentile(added_final, 0.5),
        "p50_check_overhead_ms": percentile([r["checked_shown_ms"] - r["checked_generation_ms"] for r in timed], 0.5),
        "p95_check_overhead_ms": percentile([r["checked_shown_ms"] - r["checked_generation_ms"] for r in timed], 0.95),
        "shown_as_passing": sum(r["shown_passed_checks"] for r in rows),
        "shown_as_passing_but_failing_hidden_tests": sum(r["shown_passed_checks"] and not r["checked_pass"] for r in rows),
    }


def load(spec: CheckedBenchSpec, path: Path | None = None) -> list[Task]:
    from evals.datasets.humaneval import load_humaneval

    tasks = doctest_tasks(load_humaneval(path), spec.max_checks)
    return tasks[: spec.limit] if spec.limit else tasks


async def _lags(until, tick_s: float = 0.005) -> list[float]:
    """Lateness (ms) of each ``tick_s`` sleep of this event loop until ``until()`` is true."""
    lags = []
    while not until():
        start = time.perf_counter()
        await asyncio.sleep(tick_s)
        lags.append((time.perf_counter() - start - tick_s) * 1000)
    return lags


async def index_lag(num_files: int) -> dict[str, Any]:
    """Event-loop lag while a workspace of ``num_files`` test files is indexed, and while idle."""
    import shutil
    import tempfile

    from lsp.checks.test_index import TestIndex

    root = Path(tempfile.mkdtemp(prefix="codeloop-index-bench-"))
    try:
        for i in range(num_files):
            folder = root / "tests" / f"pkg{i // 100}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"test_m{i}.py").write_text(
                f"from pkg.m{i} import f{i}\n\n\ndef test_{i}():\n    assert f{i}({i}) == {i}\n\n\n"
                f"class TestMore{i}:\n    def test_a(self):\n        assert f{i}(0) == 0\n")
        idle_until = time.perf_counter() + 2.0
        idle = await _lags(lambda: time.perf_counter() > idle_until)
        index = TestIndex(str(root))
        t0 = time.perf_counter()
        index.start()
        start_ms = (time.perf_counter() - t0) * 1000
        during = await _lags(lambda: index.ready or time.perf_counter() - t0 > 600)
        build_s = time.perf_counter() - t0
        index.close()
        return {"machine": machine_info(), "num_files": num_files, "indexed": index.num_files,
                "start_call_ms": round(start_ms, 2), "build_s": round(build_s, 2),
                "idle_p50_lag_ms": percentile(idle, 0.5), "idle_p99_lag_ms": percentile(idle, 0.99),
                "idle_max_lag_ms": max(idle), "building_p50_lag_ms": percentile(during, 0.5),
                "building_p99_lag_ms": percentile(during, 0.99), "building_max_lag_ms": max(during)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def check_latency(tasks: list[Task], spec: CheckedBenchSpec) -> dict[str, Any]:
    """Time from k finished candidates to the shown, checked suggestion (the sandbox part alone)."""
    from lsp.context import build
    from lsp.engine_client import Sample, Samples

    checks = CheckSettings(enabled=True, candidates=spec.candidates, deadline_ms=60_000, backend=spec.backend)
    checker = Checker(None, checks)
    rows = []
    try:
        for task in tasks:
            text, line = document(task)
            body = task.canonical_solution[len(task.prompt):].rstrip("\n").removeprefix("    ")
            found = checker.find(f"/bench/{task.entry_point}.py", text, line, 4)
            ctx = build(f"{task.entry_point}.py", text, line, 4)

            async def stream(body=body):
                yield Samples([Sample(i, f"{body}\n    # candidate {i}\n\n\n", -float(i), True)
                               for i in range(spec.candidates)], True)

            t0 = time.perf_counter()
            selection = await checker.select(stream(), ctx, found, f"/bench/{task.entry_point}.py", text,
                                             text.rfind("\n", 0, len(text) - 1) + 5, 12)
            rows.append({"task_id": task.task_id, "num_checks": len(found.checks) if found else 0,
                         "ms": round((time.perf_counter() - t0) * 1000, 1),
                         "check": selection.verdict.summary() if selection and selection.verdict else None})
    finally:
        checker.close()
    timed = [r["ms"] for r in rows[WARMUP:]] or [r["ms"] for r in rows]
    return {"spec": asdict(spec), "machine": machine_info(), "num_tasks": len(rows),
            "p50_ms": percentile(timed, 0.5), "p95_ms": percentile(timed, 0.95),
            "passed": sum(bool(r["check"] and r["check"].startswith("passes")) for r in rows), "tasks": rows}
