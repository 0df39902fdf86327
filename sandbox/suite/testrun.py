"""``run_tests``: a repository's pytest suite (or chosen tests) in the sandbox -> ``SuiteRun``.

Outcomes come from the plugin's nonce-tagged records (sandbox/suite/plugin.py), never from pytest's console
output; a selected test with no record did not run. ``files`` replaces files of the repository by copies
(a candidate edit) without touching the working tree.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.suite.environment import SuiteEnv
from sandbox.suite.isolation import OUT_DIR, TreeCommand, TreeResult, run_tree
from sandbox.types import Limits, RunStatus

PLUGIN_MODULE = "codeloop_suite_plugin"
PLUGIN_PATH = f"/codeloop-plugin/{PLUGIN_MODULE}.py"
PLUGIN_SOURCE = Path(__file__).with_name("plugin.py")
RECORDS = "records.jsonl"
SUITE_LIMITS = Limits(timeout_s=1800, memory_mb=4096, pids=512, tmpfs_mb=1024, max_output_bytes=256 * 1024,
                      kill_output_bytes=256 * 2**20)
"""A whole-suite run: long, generous; output beyond the kept tail only costs reading."""
CHECK_LIMITS = Limits(timeout_s=120, memory_mb=2048, pids=256, tmpfs_mb=512, max_output_bytes=64 * 1024,
                      kill_output_bytes=64 * 2**20)
"""A few chosen tests (a task's check)."""
PASSING = ("passed",)
EXIT_NAMES = {2: "interrupted", 3: "pytest internal error", 4: "pytest usage error", 5: "no tests collected"}


@dataclass(frozen=True)
class TestReport:
    """One test's outcome: passed | failed | error | skipped | xfailed | not_run."""

    __test__ = False  # not a pytest test class
    id: str
    outcome: str
    duration_s: float = 0.0
    message: str = ""


@dataclass
class SuiteRun:
    """What one pytest session in the sandbox gave."""

    tests: dict[str, TestReport] = field(default_factory=dict)
    collect_errors: dict[str, str] = field(default_factory=dict)
    """Test file (or node) that failed to import -> one-line reason."""
    exit_status: int | None = None
    """pytest's exit status (None: the session did not finish)."""
    reason: str = ""
    """One line when the session did not complete normally (exit status other than 0 and 1); else empty."""
    coverage: dict[str, dict[int, list[str]]] | None = None
    """Path relative to the root -> line -> ids of the tests that ran it (coverage runs only)."""
    duration_s: float = 0.0
    output_tail: str = ""

    @property
    def completed(self) -> bool:
        return not self.reason

    def outcomes(self, ids: Sequence[str]) -> list[TestReport]:
        """Reports for ``ids`` in order; a test with no record counts as ``not_run``."""
        return [self.tests.get(i) or TestReport(i, "not_run", message=self.reason or "no result") for i in ids]

    def passed(self, ids: Sequence[str]) -> int:
        return sum(r.outcome in PASSING for r in self.outcomes(ids))


def run_tests(env: SuiteEnv, select: Sequence[str] = (), *, coverage: bool = False,
              files: Mapping[str, str] | None = None, limits: Limits | None = None,
              keep_going: bool = True) -> SuiteRun:
    """Run ``select`` (pytest node ids; empty: the whole suite) in the sandbox. ``files`` maps paths
    relative to ``env.root`` to replacement texts. ``keep_going`` runs the rest when a test file fails to
    import (its reason lands in ``collect_errors``)."""
    nonce = secrets.token_hex(16)
    variables = {**env.environ(), "PYTHONPATH": str(Path(PLUGIN_PATH).parent), "CODELOOP_SUITE_NONCE": nonce,
                 "CODELOOP_SUITE_OUT": OUT_DIR}
    if coverage:
        variables["CODELOOP_SUITE_COVER"] = str(env.root)
    argv = [str(env.python), "-m", "pytest", "-p", PLUGIN_MODULE, "-p", "no:cacheprovider", "--tb=short",
            *(["--continue-on-collection-errors"] if keep_going else []), *(list(select) or env.pytest_args)]
    replaced = {str(env.root / rel): text for rel, text in (files or {}).items()}
    replaced[PLUGIN_PATH] = PLUGIN_SOURCE.read_text(encoding="utf-8")
    cmd = TreeCommand(tuple(argv), str(env.root), (*env.folders, str(env.root)), replaced, variables,
                      limits or (SUITE_LIMITS if not select else CHECK_LIMITS))
    return _read(run_tree(cmd), nonce, env.root)


def _read(result: TreeResult, nonce: str, root: Path) -> SuiteRun:
    run = SuiteRun(duration_s=round(result.duration_s, 3), output_tail=(result.stdout + result.stderr)[-3000:])
    tag = f"@@{nonce} "
    for line in result.outputs.get(RECORDS, b"").decode("utf-8", "replace").splitlines():
        if not line.startswith(tag):
            continue
        try:
            rec = json.loads(line[len(tag):])
        except ValueError:
            continue
        if rec.get("event") == "test":
            run.tests.setdefault(rec["id"], TestReport(rec["id"], rec["outcome"], rec.get("duration_s", 0.0),
                                                       rec.get("message", "")))
        elif rec.get("event") == "collect_error":
            run.collect_errors[rec["path"]] = rec.get("message", "")
        elif rec.get("event") == "done":
            run.exit_status = int(rec["exitstatus"])
    run.reason = _reason(result, run)
    if run.exit_status is not None and "coverage.json" in result.outputs:
        run.coverage = _relative_coverage(json.loads(result.outputs["coverage.json"]), root)
    return run


def _reason(result: TreeResult, run: SuiteRun) -> str:
    if result.status not in (RunStatus.PASSED, RunStatus.FAILED):
        return f"{result.status.value}: {result.message}"
    if run.exit_status is None:
        return f"pytest did not finish: {_last_line(result.stderr or result.stdout)}"
    if run.exit_status in (0, 1):
        return ""
    return f"{EXIT_NAMES.get(run.exit_status, f'exit status {run.exit_status}')}: {_last_line(result.stdout)}"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("@@")]
    return lines[-1][:300] if lines else "(no output)"


def _relative_coverage(raw: dict, root: Path) -> dict[str, dict[int, list[str]]]:
    tests = raw["tests"]
    out: dict[str, dict[int, list[str]]] = {}
    for path, lines in raw["files"].items():
        p = Path(path)
        if root not in p.parents:
            continue
        out[str(p.relative_to(root))] = {int(n): [tests[i] for i in ids] for n, ids in lines.items()}
    return out
