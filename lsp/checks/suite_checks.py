"""Tests from the repository's coverage map, run in the repository's own environment.

Where ``codeloop tasks mine`` (or anything that builds ``sandbox.suite``'s coverage map) has run, the map
says which of the repository's tests execute the function at the cursor: those are its best checks, and
they run the way the miner ran them: the repository's own interpreter and virtualenv, read-only, under
bubblewrap, with the candidate bound over the file (sandbox/suite). The map's line numbers are those of
the file on disk when it was built, so the function is looked up by name in the file on disk.
"""

from __future__ import annotations

import ast
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lsp.checks.check import Check, CheckKind
from lsp.checks.site import parse_or_none
from lsp.checks.verdict import Verdict, VerdictStatus, check_failed, short
from sandbox.types import Limits

MAX_SUITE_TESTS = 8
"""Covering tests kept per function: those that run the function from the cursor on first (they reach the code
the suggestion replaces), then the function's other tests; fastest first within each group."""
MAP_TTL_S = 30.0
SUITE_CHECK_LIMITS = Limits(timeout_s=60, memory_mb=2048, pids=256, tmpfs_mb=256, max_output_bytes=64 * 1024,
                            kill_output_bytes=64 * 2**20)


@dataclass(frozen=True)
class SuiteChecks:
    """How to run the coverage map's tests of one function."""

    env: object
    """A ``sandbox.suite.environment.SuiteEnv``."""
    rel_path: str
    ids: tuple[str, ...]


class CoverageSource:
    """The newest coverage map of one workspace (re-read at most every MAP_TTL_S)."""

    def __init__(self, root: str, cache_dir: Path | None = None) -> None:
        self.root = root
        self.cache_dir = cache_dir
        """Where the coverage maps are (None: sandbox.suite's default)."""
        self._lock = threading.Lock()
        self._map: tuple[float, object | None] = (-MAP_TTL_S, None)

    def _latest(self) -> object | None:
        from sandbox.suite.coverage_map import latest_for

        with self._lock:
            at, cmap = self._map
            if time.monotonic() - at > MAP_TTL_S:
                cmap = latest_for(Path(self.root), *([self.cache_dir] if self.cache_dir else []))
                self._map = (time.monotonic(), cmap)
            return cmap

    def has_map(self) -> bool:
        return self._latest() is not None

    def checks_for(self, path: str, qualname: str, cursor_line: int | None = None) -> tuple[SuiteChecks, list[Check]] | None:
        """The map's passing tests that run ``qualname`` of ``path`` (None: no map, or none run it);
        ``cursor_line`` (1-based) puts first the tests that run the function's lines from there on."""
        from sandbox.suite.environment import EnvError, SuiteEnv

        cmap = self._latest()
        if cmap is None or not path.startswith(self.root.rstrip("/") + "/"):
            return None
        rel = os.path.relpath(path, self.root)
        lines = function_lines(path, qualname)
        ids = tests_near_cursor(cmap, rel, lines, cursor_line) if lines else []
        if not ids:
            return None
        env = cmap.env  # type: ignore[attr-defined]
        try:
            suite = SuiteEnv.create(Path(cmap.root), Path(str(env["python"])), dict(env.get("variables") or {}),  # type: ignore[attr-defined]
                                    tuple(env.get("pytest_args") or ()))
        except (EnvError, KeyError, TypeError):
            return None  # the map's interpreter is gone: no suite checks
        checks = [Check(CheckKind.SUITE, i.split("::", 1)[-1].replace("::", "."), path=i.split("::", 1)[0], node=i)
                  for i in ids]
        return SuiteChecks(suite, rel, tuple(ids)), checks


def tests_near_cursor(cmap: object, rel: str, lines: range, cursor_line: int | None) -> list[str]:
    """At most MAX_SUITE_TESTS of the tests that run ``lines``: first those that run the code where the
    suggestion goes (the first line at or after ``cursor_line`` that any test runs), then those that run
    ``lines`` from ``cursor_line`` on, then the rest. A test that runs only the function's other branches, or
    only the code after the cursor's block, cannot judge the suggestion."""
    tests_for = cmap.tests_for_lines  # type: ignore[attr-defined]
    ids: list[str] = tests_for(rel, lines)
    if cursor_line is not None and cursor_line in lines:
        after = range(cursor_line, lines.stop)
        at = next((found for line in after if (found := tests_for(rel, range(line, line + 1)))), [])
        ids = list(dict.fromkeys([*at, *tests_for(rel, after), *ids]))
    return ids[:MAX_SUITE_TESTS]


def function_lines(path: str, qualname: str) -> range | None:
    """The body lines (1-based) of ``qualname`` in the file on disk (None: not found or not parseable)."""
    try:
        tree = parse_or_none(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    if tree is None:
        return None
    scope: list[ast.stmt] = tree.body
    parts = qualname.split(".")
    for i, part in enumerate(parts):
        kinds = (ast.ClassDef,) if i < len(parts) - 1 else (ast.FunctionDef, ast.AsyncFunctionDef)
        node = next((n for n in scope if isinstance(n, kinds) and n.name == part), None)
        if node is None:
            return None
        scope = node.body
    return range(node.body[0].lineno, (node.end_lineno or node.body[0].lineno) + 1)


def run_suite(suite: SuiteChecks, candidate_text: str, checks: list[Check]) -> Verdict:
    """The verdict of ``checks`` (SUITE checks, in the order of ``suite.ids``) on the candidate document."""
    from sandbox.suite.testrun import PASSING, run_tests

    try:
        compile(candidate_text, suite.rel_path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return Verdict(VerdictStatus.FAILED, 0, len(checks), short(f"{type(exc).__name__}: {exc}"))
    run = run_tests(suite.env, suite.ids, files={suite.rel_path: candidate_text}, limits=SUITE_CHECK_LIMITS)  # type: ignore[arg-type]
    reports = run.outcomes(suite.ids)
    passed = sum(r.outcome in PASSING for r in reports)
    if run.reason and not passed:
        return check_failed(run.reason, checks)
    bad = [(c, r) for c, r in zip(checks, reports, strict=True) if r.outcome not in PASSING]
    if not bad:
        return Verdict(VerdictStatus.PASSED, passed, len(checks))
    check, report = bad[0]
    return Verdict(VerdictStatus.FAILED, passed, len(checks), short(f"{check.name}: {readable(report.message, report.outcome)}"))


def readable(message: str, outcome: str) -> str:
    """pytest's one-line message without its "E" gutter; its truncation notice says nothing: the outcome."""
    text = message.strip().removeprefix("E").strip()
    return outcome if not text or text.startswith("...Full output truncated") else text
