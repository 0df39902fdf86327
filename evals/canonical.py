"""Run each task's canonical solution through the sandbox: the harness check (should all pass)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from evals.execute import Candidate, ExecConfig, judge_each
from evals.progress import Bars
from evals.results import SampleResult, result_record
from evals.rundir import RunDir
from evals.task import Task
from sandbox.executor import Executor

_SLOW = "reference and candidate both run every input in one sandbox run: past the default 20 s wall clock"
KNOWN_CANONICAL_FAILURES: dict[str, dict[str, str]] = {
    "humanevalplus": {"HumanEval/139": _SLOW + " (passes in 21 s)",
                      "HumanEval/130": _SLOW + " under docker --cpus 1 (8 s under bwrap)"},
    "mbppplus": {"Mbpp/255": "needs more than the default 1 GiB (passes with 3 GiB, 26 s)",
                 "Mbpp/271": _SLOW + " (passes in 20 s)", "Mbpp/392": _SLOW + " (passes in 24 s)",
                 "Mbpp/599": _SLOW + " (passes in 69 s)"},
}
"""Canonical solutions known not to pass under the default limits (20 s, 1 GiB), measured on 2 shared cores;
each passes with larger limits. A failure outside this table is a harness bug. BigCodeBench has no entry:
its named subsets leave out what the image cannot run (``evals/data/bigcodebench/environment.toml``)."""


@dataclass
class CanonicalReport:
    benchmark: str
    num_tasks: int
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """task_id -> status and message."""
    coverage: str = ""
    """Which part of the benchmark the tasks are (BigCodeBench subsets: what they leave out and why)."""
    num_run: int = 0
    """Tasks run by this call; the others' verdicts came from the run folder (a resumed check)."""
    run_dir: str = ""

    @property
    def unexpected(self) -> dict[str, str]:
        known = KNOWN_CANONICAL_FAILURES.get(self.benchmark, {})
        return {k: v for k, v in self.failed.items() if k not in known}

    def as_dict(self) -> dict:
        return {"benchmark": self.benchmark, "coverage": self.coverage, "num_tasks": self.num_tasks,
                "num_passed": len(self.passed), "num_run": self.num_run, "run_dir": self.run_dir,
                "failed": self.failed, "unexpected_failures": sorted(self.unexpected)}


def check_canonical(tasks: list[Task], config: ExecConfig, progress: bool = True, coverage: str = "",
                    run_dir: RunDir | None = None, executor: Executor | None = None) -> CanonicalReport:
    """Run every task's canonical solution. With ``run_dir`` (opened), each verdict is appended to its
    ``results.jsonl`` as it finishes and tasks already there are not run again (their recorded verdicts
    go into the report), so a check killed at any point and resumed counts every task exactly once."""
    done = run_dir.load(run_dir.results, _warn) if run_dir else {}
    todo = [Candidate(t, 0, "", t.canonical_solution) for t in tasks if (t.task_id, 0) not in done]
    verdicts = {k: SampleResult.from_dict(r) for k, r in done.items()}
    with Bars(progress) as bars:
        bars.add("canonical", len(tasks), done=len(tasks) - len(todo))
        for _, result in judge_each(todo, config, executor):
            if run_dir:
                run_dir.results.append(result_record(result))
            verdicts[result.key] = result
            bars.advance("canonical")
    report = CanonicalReport(tasks[0].benchmark if tasks else "", len(tasks), coverage=coverage, num_run=len(todo),
                             run_dir=str(run_dir.path) if run_dir else "")
    for t in tasks:
        r = verdicts[(t.task_id, 0)]
        if r.passed:
            report.passed.append(t.task_id)
        else:
            report.failed[t.task_id] = f"{r.status}: {r.message[:600]}"
    return report


def _warn(message: str) -> None:
    print(f"codeloop eval canonical: warning: {message}", file=sys.stderr)
