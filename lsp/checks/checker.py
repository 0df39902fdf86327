"""Execution checks for one workspace: its test index, the sandbox executor and the check settings.

``find`` answers "does the function at the cursor have checks?" and costs almost nothing when it does
not: a backward scan names the enclosing function, and the document is parsed only when the name
appears with ``>>>``, an ``assert``, a ``def test`` in the same file, or in the test index.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from lsp.checks.check import FunctionChecks
from lsp.checks.executor import CheckExecutor
from lsp.checks.finder import find_checks
from lsp.checks.job import build_job
from lsp.checks.ranker import Candidate
from lsp.checks.selection import More, Selection, select
from lsp.checks.suite_checks import CoverageSource
from lsp.checks.test_index import TestIndex
from lsp.checks.verdict import Verdict, distrust_tampering, merge
from lsp.config import CheckSettings
from lsp.context import CompletionContext
from lsp.engine_client import Samples
from lsp.percentile import percentile

_DEF = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)")


def quick_name(lines: list[str], line: int) -> str | None:
    """The name of the nearest ``def`` above ``line`` indented less than the cursor's line (a guess:
    ``find`` confirms it by parsing)."""
    if not 0 <= line < len(lines):
        return None
    here = lines[line]
    limit = len(here) - len(here.lstrip()) if here.strip() else len(here)
    for i in range(line, -1, -1):
        match = _DEF.match(lines[i])
        if match and (len(match.group(1)) < limit or i == line):
            return match.group(2)
    return None


class Checker:
    """Invariant: nothing runs unsandboxed; with checks disabled or no sandbox, ``find`` finds nothing."""

    def __init__(self, root: str | None, settings: CheckSettings) -> None:
        self.root = root
        self.settings = settings
        self.index = TestIndex(root) if root else None
        self.coverage = CoverageSource(root) if root else None
        self.executor = CheckExecutor(settings.backend)

    def configure(self, settings: CheckSettings) -> None:
        """New settings (a new sandbox executor when the backend changes)."""
        if settings.backend != self.settings.backend:
            self.executor.close()
            self.executor = CheckExecutor(settings.backend)
        self.settings = settings

    def start(self) -> None:
        """Begin indexing the workspace's tests in the background."""
        if self.index is not None and self.active():
            self.index.start()

    def index_now(self) -> None:
        """Index the workspace's tests in this thread (a one-shot command, not a keystroke)."""
        if self.index is not None:
            self.index.build_now()

    def active(self) -> bool:
        """On when enabled, or by default where a sandbox backend is available."""
        if self.settings.enabled is False:
            return False
        return self.executor.backend()[0] is not None

    def find(self, path: str, text: str, line: int, character: int) -> FunctionChecks | None:
        """The checks of the function at the cursor (blocking; call from a thread)."""
        if not self.active():
            return None
        name = quick_name(text.split("\n"), line)
        if name is None or not self._evidence(text, name):
            return None
        coverage = self.coverage if self.executor.backend()[0] == "bwrap" else None  # suites run under bwrap
        return find_checks(path, text, line, character, root=self.root, index=self.index, coverage=coverage)

    def _evidence(self, text: str, name: str) -> bool:
        called_here = text.count(f"{name}(") > 1  # more than its own def
        if ">>>" in text or (called_here and ("assert" in text or "def test" in text)):
            return True
        if self.coverage is not None and self.coverage.has_map():
            return True
        return self.index is not None and bool(self.index.tests_calling(name))

    async def select(self, stream: AsyncIterator[Samples], ctx: CompletionContext, checks: FunctionChecks,
                     path: str, text: str, offset: int, max_lines: int,
                     settle_on: int | None = None, more: More | None = None) -> Selection | None:
        """Check each candidate of ``stream`` (and of ``more``) spliced into ``text`` at ``offset``; the one to
        show (``settle_on``, ``more``: see ``selection.select``)."""

        async def check(candidate: Candidate) -> Verdict:
            document = text[:offset] + candidate.text + text[offset:]
            parts = []
            if checks.plain():
                parts.append(self.executor.run(build_job(checks, document, path, self.root), checks.plain()))
            if checks.suite is not None:
                parts.append(self.executor.run_suite(checks.suite, document, checks.of_suite()))
            return distrust_tampering(merge(list(await asyncio.gather(*parts))), document, offset, candidate.text)

        return await select(stream, ctx, check, self.settings.deadline_ms / 1000, max_lines, settle_on, more,
                            want=self.settings.candidates)

    def stats(self) -> dict[str, object]:
        """For ``codeloop/stats``: the sandbox in use, the test index's progress, the sandbox runs so far."""
        name, why = self.executor.backend()
        runs = self.executor.run_ms
        return {"enabled": self.settings.enabled, "backend": name, "why": why,
                "index_files": self.index.num_files if self.index else 0,
                "index_ready": bool(self.index and self.index.ready), "num_runs": self.executor.num_runs,
                "p50_run_ms": percentile(runs, 0.5), "p95_run_ms": percentile(runs, 0.95)}

    def saved(self, path: str) -> None:
        """A document was saved: refresh its tests (blocking; call from a thread)."""
        if self.index is not None:
            self.index.update(path)

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
        self.executor.close()
