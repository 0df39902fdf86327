"""``mine``: a repository -> FIM tasks whose spans its own tests execute, gold-checked, split by file.

coverage map (cached per repository content) -> each file's functions -> candidate spans (body, block,
line) that passing tests execute -> a few per function, chosen by a stable hash -> gold check (the original
span spliced back, the task's tests run alone in the sandbox; a task whose gold fails is dropped with the
reason: flaky or order-dependent tests exist) -> tasks file + report. With an acceptance log, the user's
accepted multi-line suggestions in this repository join the chosen tasks (``evals/repo/accepted.py``: same
split rule, same test choice, same gold check, the accepted text spliced in); each that does not become a
task has a one-line reason in the report.

Bad input never stops the rest: a file that does not parse, a test file that does not import, a test that
needs the network each get a one-line reason in the report. Only a suite that cannot run at all (no tests,
no pytest, a timeout) ends mining early, with its reason. Gold checks are cached (JSONL next to the coverage
map), so a killed miner resumes without redoing them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from evals.progress import Bars
from evals.repo.accepted import MADE, ORIGIN, tasks_from_acceptance
from evals.repo.check import CheckResult, check_completion
from evals.repo.source import SourceFile, python_files, read_source, skip_reason
from evals.repo.spans import (
    KINDS,
    Lines,
    Span,
    block_spans,
    body_span,
    choose,
    line_spans,
    logical_lines,
    pick_line_cuts,
)
from evals.repo.target import RepoTarget
from evals.repo.task import DEFAULT_HELDOUT_FRACTION, DEFAULT_SEED, FimTask, split_of, write_tasks
from evals.results import JsonlStore
from lsp.acceptance_log import AcceptanceLog
from lsp.context import index_to_utf16
from sandbox.suite.coverage_map import DEFAULT_CACHE_DIR, CoverageMap, cache_path, coverage_map

NETWORK = re.compile(r"getaddrinfo|Name or service not known|Network is unreachable|Connection refused|"
                     r"Temporary failure in name resolution|No route to host|URLError|ConnectionError", re.I)
MAX_REPORTED_TESTS = 50
SLOW_TEST_S = 1.0
"""A covering test slower than this in the suite run is kept only when no faster one covers the span."""


@dataclass(frozen=True)
class MineOptions:
    out: Path
    seed: int = DEFAULT_SEED
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION
    per_function: int = 1
    """Tasks of each kind per function (at most)."""
    max_tests: int = 8
    """Covering tests kept per task (the cost of every check); see ``pick_tests``."""
    concurrency: int = 2
    cache_dir: Path = DEFAULT_CACHE_DIR
    refresh: bool = False
    """Rebuild the coverage map and redo gold checks even when cached."""
    progress: bool = False
    acceptance_log: Path | None = None
    """The editor's acceptance log (lsp/acceptance_log.py): its accepted suggestions under the repository
    root become tasks too (None: none)."""


@dataclass
class MineReport:
    repo: str
    source: str
    out: str = ""
    reason: str = ""
    """Why mining stopped early ("" when it ran to the end)."""
    commit: str | None = None
    repo_key: str = ""
    coverage_cached: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    tests: dict[str, int] = field(default_factory=dict)
    """Tests of the whole-suite run by outcome."""
    collect_errors: dict[str, str] = field(default_factory=dict)
    failing_tests: dict[str, str] = field(default_factory=dict)
    """Tests that did not pass in the suite run (first MAX_REPORTED_TESTS) -> one line; ``needs the network``
    when the message says so."""
    files: dict[str, str] = field(default_factory=dict)
    """Every Python file -> ``N tasks`` or why it gave none."""
    candidates: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    """Task id -> why the task was dropped after it was chosen (its gold check)."""
    tasks: dict[str, dict[str, int]] = field(default_factory=dict)
    """Split -> kind -> tasks written."""
    accepted: dict[str, str] = field(default_factory=dict)
    """Accepted suggestion of the acceptance log (event id) -> ``task <task id> (<split>)`` or why it gave none."""

    def as_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


def mine(target: RepoTarget, options: MineOptions) -> MineReport:
    """Mine ``target`` into ``options.out``; the report, written beside it (``<out>.report.json``, also when
    mining stopped early), says what happened to every file and task."""
    start = time.perf_counter()
    report = MineReport(target.name, target.source, str(options.out))
    cmap, report.coverage_cached = coverage_map(target.env, options.cache_dir, options.refresh)
    report.seconds["coverage"] = round(0.0 if report.coverage_cached else cmap.seconds, 1)
    report.commit, report.repo_key = cmap.commit, cmap.key
    _suite_summary(cmap, report)
    if not report.reason:
        t0 = time.perf_counter()
        chosen = _choose_tasks(target, cmap, options, report)
        accepted = _accepted_tasks(target, cmap, options, chosen, report)
        report.seconds["spans"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        kept = _gold_check(target, cmap, chosen + accepted, options, report)
        report.seconds["gold"] = round(time.perf_counter() - t0, 1)
        _report_accepted(accepted, kept, report)
        write_tasks(options.out, kept)
        for t in kept:
            report.tasks.setdefault(t.split, {}).setdefault(t.kind, 0)
            report.tasks[t.split][t.kind] += 1
    report.seconds["total"] = round(time.perf_counter() - start, 1)
    report_path(options.out).parent.mkdir(parents=True, exist_ok=True)
    report_path(options.out).write_text(json.dumps(report.as_dict(), indent=1))
    return report


def report_path(tasks_file: Path) -> Path:
    """Where ``mine`` writes the report of the tasks file ``tasks_file``."""
    return Path(f"{tasks_file}.report.json")


def _suite_summary(cmap: CoverageMap, report: MineReport) -> None:
    report.tests = dict(Counter(cmap.outcomes))
    report.collect_errors = dict(cmap.collect_errors)
    failing = sorted(cmap.failures.items())[:MAX_REPORTED_TESTS]
    report.failing_tests = {t: classify_failure(message) for t, message in failing}
    if cmap.reason:
        report.reason = f"the test suite did not run: {cmap.reason}"
    elif not report.tests.get("passed"):
        first = next(iter(cmap.collect_errors.items()), None)
        report.reason = "no test passes" + (f" (e.g. {first[0]}: {first[1]})" if first else "")


def _choose_tasks(target: RepoTarget, cmap: CoverageMap, options: MineOptions, report: MineReport) -> list[FimTask]:
    tasks: list[FimTask] = []
    seen: set[str] = set()  # NOTE: a line inside a nested function is that function's, never its parent's too
    for rel in python_files(target.root):
        why = skip_reason(rel)
        source = read_source(target.root, rel) if why is None else why
        if not isinstance(source, str) and not cmap.lines.get(rel):
            source = "no test executes it"
        if isinstance(source, str):
            report.files[rel] = source
            continue
        found = [t for t in _file_tasks(target, cmap, source, options, report) if t.task_id not in seen]
        seen.update(t.task_id for t in found)
        report.files[rel] = f"{len(found)} tasks" if found else "no covered span fits a task"
        tasks += found
    return tasks


def _file_tasks(target: RepoTarget, cmap: CoverageMap, source: SourceFile, options: MineOptions,
                report: MineReport) -> list[FimTask]:
    lines, logical = Lines(source.text), logical_lines(source.text)
    split = split_of(source.path, options.seed, options.heldout_fraction)
    out = []
    for fn in source.functions:
        body = body_span(fn, lines)
        by_kind = {"body": [body] if body else [], "block": block_spans(fn, lines),
                   "line": pick_line_cuts(line_spans(fn, lines, logical), options.seed, source.path)}
        for kind in KINDS:
            covered = [(s, cmap.tests_for_lines(source.path, s.lines())) for s in by_kind[kind]]
            covered = [(s, tests) for s, tests in covered if tests]
            report.candidates[kind] = report.candidates.get(kind, 0) + len(covered)
            tests_of = {s: tests for s, tests in covered}
            for span in choose([s for s, _ in covered], options.seed, source.path, options.per_function):
                out.append(_task(target, cmap, source, lines, span, tests_of[span], split, options))
    return out


def _task(target: RepoTarget, cmap: CoverageMap, source: SourceFile, lines: Lines, span: Span,
          tests: list[str], split: str, options: MineOptions) -> FimTask:
    text = source.text
    row = lines.rows[span.first_line - 1]
    col = span.start - lines.starts[span.first_line - 1]
    return FimTask(
        task_id=f"{target.name}:{source.path}:{span.kind}:{span.first_line}:{col}", repo=target.name,
        source=target.source, path=source.path, kind=span.kind, function=span.function,
        line=span.first_line - 1, character=index_to_utf16(row, col), prefix=text[: span.start],
        middle=text[span.start: span.end], suffix=text[span.end:], tests=pick_tests(tests, cmap, options),
        num_covering_tests=len(tests), split=split, first_line=span.first_line, last_line=span.last_line,
        repo_key=cmap.key, commit=cmap.commit)


def _accepted_tasks(target: RepoTarget, cmap: CoverageMap, options: MineOptions, mined: list[FimTask],
                    report: MineReport) -> list[FimTask]:
    """The acceptance log's accepted suggestions under the root, split and tested as mined tasks are."""
    if options.acceptance_log is None:
        return []
    tasks, report.accepted = tasks_from_acceptance(
        AcceptanceLog(options.acceptance_log).read(), str(target.root), cmap, target.name, target.source,
        split=lambda rel: split_of(rel, options.seed, options.heldout_fraction),
        pick_tests=lambda tests: pick_tests(tests, cmap, options), taken=mined)
    return tasks


def _report_accepted(accepted: list[FimTask], kept: list[FimTask], report: MineReport) -> None:
    written = {t.task_id for t in kept}
    for t in accepted:
        report.accepted[str(t.extra[ORIGIN])] = (f"{MADE}{t.task_id} ({t.split})" if t.task_id in written
                                                 else f"dropped: {report.dropped[t.task_id]}")


def pick_tests(tests: list[str], cmap: CoverageMap, options: MineOptions) -> tuple[str, ...]:
    """At most ``max_tests`` of a span's covering tests, the same on every run of the miner: the tests that
    took at most SLOW_TEST_S in the suite run (all of them if none did), chosen by a hash of (seed, id),
    in id order. NOTE: not "fastest first": durations vary between runs and would change the choice."""
    fast = [t for t in tests if cmap.duration(t) <= SLOW_TEST_S] or tests
    chosen = sorted(fast, key=lambda t: hashlib.sha256(f"{options.seed}:{t}".encode()).hexdigest())
    return tuple(sorted(chosen[: options.max_tests]))


def _gold_check(target: RepoTarget, cmap: CoverageMap, tasks: list[FimTask], options: MineOptions,
                report: MineReport) -> list[FimTask]:
    """Tasks whose original span passes their tests when spliced back (checked once per test set)."""
    store = JsonlStore(cache_path(target.env, cmap.key, options.cache_dir).with_suffix(".gold.jsonl"))
    if options.refresh and store.path.exists():
        store.path.unlink()
    done, _ = store.load()
    store.repair_tail()
    groups: dict[str, FimTask] = {}
    for t in tasks:
        groups.setdefault(_tests_key(t), t)
    todo = [(k, t) for k, t in groups.items() if (k, 0) not in done]

    def run(item: tuple[str, FimTask]) -> None:
        key, task = item
        result = check_completion(target.env, task, task.middle)
        store.append({"task_id": key, "sample_index": 0, **result.as_dict()})

    with Bars(options.progress) as bars, ThreadPoolExecutor(max(1, options.concurrency)) as pool:
        bars.add("gold", len(groups), len(groups) - len(todo))
        for _ in pool.map(run, todo):
            bars.advance("gold")
    verdicts, _ = store.load()
    kept = []
    for t in tasks:
        gold = CheckResult(**{k: v for k, v in verdicts[(_tests_key(t), 0)].items()
                              if k in CheckResult.__dataclass_fields__})
        if gold.passed:
            kept.append(_with_seconds(t, gold.seconds))
        else:
            report.dropped[t.task_id] = f"gold fails its tests ({gold.status}): {gold.message}"[:300]
    return kept


def _tests_key(task: FimTask) -> str:
    """Gold results depend only on which tests run when the spliced file is the original; an accepted
    suggestion's file is the one the editor held, so its text is part of the key."""
    text = (hashlib.sha256(task.splice(task.middle).encode()).hexdigest(),) if ORIGIN in task.extra else ()
    return hashlib.sha256("\n".join((task.path, *task.tests, *text)).encode()).hexdigest()[:24]


def _with_seconds(task: FimTask, seconds: float) -> FimTask:
    from dataclasses import replace

    return replace(task, gold_seconds=round(seconds, 2))


def classify_failure(message: str) -> str:
    """``needs the network: ...`` when a failing test's message says so, else the message."""
    return f"needs the network: {message}" if NETWORK.search(message) else message
