"""A sandbox result read strictly, as what the user is told about one candidate.

Invariant: ``Verdict.passed`` is True only when the run finished normally, reported exactly one outcome
per check and every outcome is "passed". Anything short of that (a timeout, a crash, a missing record,
a forged line of output, an early exit) is a failure of the candidate or of the check, never a pass.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lsp.checks.check import Check, CheckKind
from sandbox.types import RunResult, RunStatus, TestStatus

MAX_DETAIL_CHARS = 120
SKIPPED = "RuntimeError: skipped:"
CODE_RAISED = "the code raised "
_JUDGED_DOCTEST = re.compile(r"^repr\(.*\) == (.*) \(got (.*)\)$")
COMPILE_ERRORS = ("SyntaxError", "IndentationError", "TabError")
"""Import-time errors that are the candidate's fault: its function body does not run at import, so any
other import error comes from the environment (a missing package) and says nothing about the candidate."""


class VerdictStatus(str, enum.Enum):
    PASSED = "passed"
    """Every check ran and passed."""
    FAILED = "failed"
    """The candidate ran and at least one check failed (or the candidate did not even import)."""
    CHECK_FAILED = "check_failed"
    """The checks could not finish: timeout, memory, a killed or vanished process, no sandbox."""


@dataclass(frozen=True)
class Verdict:
    status: VerdictStatus
    num_passed: int
    num_checks: int
    detail: str = ""
    """The first failing check and its message, or why the checks could not finish."""
    noun: str = "tests"

    @property
    def passed(self) -> bool:
        return self.status is VerdictStatus.PASSED

    def summary(self) -> str:
        """One line for the editor: "passes 3/3 tests", "fails test_x: AssertionError", "check failed: timeout"."""
        if self.status is VerdictStatus.PASSED:
            return f"passes {self.num_passed}/{self.num_checks} {self.noun}"
        if self.status is VerdictStatus.FAILED:
            return f"fails {self.detail} ({self.num_passed}/{self.num_checks} pass)"
        return f"check failed: {self.detail}"

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status.value, "passed": self.num_passed, "total": self.num_checks,
                "detail": self.detail, "summary": self.summary()}


def check_failed(reason: str, checks: Sequence[Check]) -> Verdict:
    return Verdict(VerdictStatus.CHECK_FAILED, 0, len(checks), short(reason), _noun(checks))


def read_verdict(result: RunResult, checks: Sequence[Check]) -> Verdict:
    """What ``result`` (one sandbox run of ``checks``, in order) says about the candidate."""
    noun, total = _noun(checks), len(checks)
    outcomes = result.tests
    passed = sum(o.status is TestStatus.PASSED for o in outcomes)
    complete = len(outcomes) == total and [o.index for o in outcomes] == list(range(total))
    if result.status is RunStatus.PASSED and complete and passed == total:
        return Verdict(VerdictStatus.PASSED, passed, total, "", noun)
    if result.status is RunStatus.FAILED and complete:
        return Verdict(VerdictStatus.FAILED, passed, total, _first_failure(result, checks), noun)
    if result.status is RunStatus.ERROR and result.message.startswith(CODE_RAISED):
        last = result.message.strip().split("\n")[-1].strip().removeprefix(CODE_RAISED)
        if last.split(":", 1)[0] in COMPILE_ERRORS:  # the document with this candidate does not compile
            return Verdict(VerdictStatus.FAILED, 0, total, short(last), noun)
        return Verdict(VerdictStatus.CHECK_FAILED, 0, total, short(f"the module does not import: {last}"), noun)
    return Verdict(VerdictStatus.CHECK_FAILED, 0, total, _reason(result), noun)


def _first_failure(result: RunResult, checks: Sequence[Check]) -> str:
    bad = [o for o in result.tests if o.status is not TestStatus.PASSED]
    real = [o for o in bad if not o.message.startswith(SKIPPED)] or bad
    first = real[0]
    message = first.message.strip().split("\n")[-1] if first.message.strip() else first.status.value
    if message.startswith("AssertionError: "):
        message = message.removeprefix("AssertionError: ")  # the assertion's own message says enough
    judged = _JUDGED_DOCTEST.match(message) if checks[first.index].kind is CheckKind.DOCTEST else None
    if judged:  # a doctest example the harness judged: say it as doctest does
        message = f"expected {judged.group(1)}, got {judged.group(2)}"
    return short(f"{checks[first.index].name}: {message}")


def _reason(result: RunResult) -> str:
    if result.status is RunStatus.TIMEOUT:
        return "timeout"
    if result.status is RunStatus.MEMORY:
        return "out of memory"
    if result.status is RunStatus.PASSED or result.status is RunStatus.FAILED:
        return "incomplete results"
    if result.status is RunStatus.SANDBOX_ERROR:
        return f"sandbox error: {result.message}"
    return f"{result.status.value}: {result.message}"


def _noun(checks: Sequence[Check]) -> str:
    return "doctests" if checks and all(c.kind is CheckKind.DOCTEST for c in checks) else "tests"


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def merge(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict for checks run in several parts: passed only when every part passed; a failure of the
    candidate is reported before a check that could not finish."""
    if len(verdicts) == 1:
        return verdicts[0]
    passed = sum(v.num_passed for v in verdicts)
    total = sum(v.num_checks for v in verdicts)
    noun = "doctests" if all(v.noun == "doctests" for v in verdicts) else "tests"
    for status in (VerdictStatus.FAILED, VerdictStatus.CHECK_FAILED):
        first = next((v for v in verdicts if v.status is status), None)
        if first is not None:
            return Verdict(status, passed, total, first.detail, noun)
    return Verdict(VerdictStatus.PASSED, passed, total, "", noun)


def distrust_tampering(verdict: Verdict, document: str, offset: int, candidate: str) -> Verdict:
    """A pass is not believed from a candidate that reaches for its checker (patches modules or builtins,
    walks frames or gc, exits the process, overrides equality, ...: ``security.tamper``): checks that run
    in the candidate's process (doctests, pytest) could be fooled by it. A failure stays a failure.

    ``document`` is the file with ``candidate`` spliced in at ``offset``: it is read whole, so the file's
    imports resolve (``json.dumps = ...`` under the file's ``import json`` is a patch) and a fragment
    (``elif x:`` ... ``obj.attr = 1``) is judged as the code it is, not as text; only signs on the
    candidate's own lines count (the rest is the user's code)."""
    if not verdict.passed:
        return verdict
    from security.tamper import tamper_signs

    first = document.count("\n", 0, offset) + 1
    lines = range(first, first + candidate.count("\n") + 1)
    rules = sorted({s.rule for s in tamper_signs(document) if s.line in lines})
    if not rules:
        return verdict
    return Verdict(VerdictStatus.CHECK_FAILED, verdict.num_passed, verdict.num_checks,
                   f"not trusted: the candidate reaches for its checker ({', '.join(rules)})", verdict.noun)
