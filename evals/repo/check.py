"""A completion spliced into its file, the task's covering tests run in the sandbox.

Used for the miner's gold check, for ``codeloop eval fim``'s tests-pass, and as the repository reward
(``CheckResult.fraction``). A spliced file that does not compile fails every covering test without a
sandbox run (those tests execute the file, so they cannot import it), but only when the original file
compiles under this interpreter too: the repository's Python may accept syntax ours does not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from evals.repo.task import FimTask
from sandbox.suite.environment import SuiteEnv
from sandbox.suite.testrun import PASSING, run_tests
from sandbox.types import Limits

MAX_FAILING_SHOWN = 5


@dataclass
class CheckResult:
    """``status``: passed (every test passed) | failed | syntax_error | broken (the session did not
    complete: timeout, sandbox error, pytest error; the reason is in ``message``)."""

    passed: bool
    num_passed: int
    num_tests: int
    status: str
    message: str = ""
    seconds: float = 0.0
    failing: list[str] = field(default_factory=list)
    """``<test id>: <outcome>: <one line>`` for the first failing tests."""

    @property
    def fraction(self) -> float:
        return self.num_passed / self.num_tests if self.num_tests else 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _compiles(text: str, path: str) -> bool:
    try:
        compile(text, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def check_completion(env: SuiteEnv, task: FimTask, completion: str, limits: Limits | None = None) -> CheckResult:
    """Run ``task.tests`` with ``completion`` typed at the cursor (the working tree is not touched)."""
    text = task.splice(completion)
    if not _compiles(text, task.path) and _compiles(task.splice(task.middle), task.path):
        return CheckResult(False, 0, len(task.tests), "syntax_error", "the spliced file does not compile")
    run = run_tests(env, task.tests, files={task.path: text}, limits=limits)
    reports = run.outcomes(task.tests)
    num_passed = sum(r.outcome in PASSING for r in reports)
    failing = [f"{r.id}: {r.outcome}: {r.message}"[:300] for r in reports if r.outcome not in PASSING]
    if run.reason and not num_passed:
        status, message = "broken", run.reason
    else:
        status = "passed" if num_passed == len(reports) else "failed"
        message = failing[0] if failing else ""
    return CheckResult(status == "passed", num_passed, len(reports), status, message, run.duration_s,
                       failing[:MAX_FAILING_SHOWN])
