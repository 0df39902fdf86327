"""Turn what the parent observed about a run into a RunResult: one place decides the status."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from sandbox.protocol import Transcript
from sandbox.types import RunResult, RunStatus, TestOutcome, TestStatus


@dataclass
class Observation:
    """Everything the parent saw. ``exit_code`` follows the shell convention (128+N = signal N);
    ``oom`` is True/False when a cgroup says so, None when unknown."""

    transcript: Transcript
    declared_tests: int | None
    stdout: str
    stderr: str
    duration_s: float
    exit_code: int | None
    timed_out: bool = False
    output_exceeded: bool = False
    oom: bool | None = None
    parent_killed: bool = False
    """The parent killed the child (timeout, output flood, or leftovers after the harness ended)."""
    timeout_s: float = 0.0
    output_limit: int = 0
    backend: str = ""


def classify(obs: Observation) -> RunResult:
    status, message = _status(obs)
    return RunResult(status=status, tests=_outcomes(obs.transcript, obs.declared_tests, status),
                     stdout=obs.stdout, stderr=obs.stderr, duration_s=obs.duration_s,
                     exit_code=obs.exit_code, message=message, backend=obs.backend)


def _signal(exit_code: int | None) -> int | None:
    if exit_code is not None and exit_code > 128:
        return exit_code - 128
    return None


def _status(obs: Observation) -> tuple[RunStatus, str]:
    t, sig = obs.transcript, _signal(obs.exit_code)
    if t.violation:
        return RunStatus.ERROR, f"result protocol violated: {t.violation}"
    if obs.timed_out:
        return RunStatus.TIMEOUT, f"wall clock of {obs.timeout_s:g} s ran out"
    if obs.oom or (obs.oom is None and sig == signal.SIGKILL and not obs.parent_killed):
        return RunStatus.MEMORY, "killed for exceeding the memory limit"
    if obs.output_exceeded:
        return RunStatus.KILLED, f"killed: output exceeded {obs.output_limit} bytes"
    if t.dirty:
        return RunStatus.SANDBOX_ERROR, "the work dir could not be cleaned"
    if t.tests_error:
        if t.tests_error.get("kind") == "ReferenceError":  # a differential job's reference failed to run
            return RunStatus.ERROR, str(t.tests_error.get("message", ""))
        return RunStatus.ERROR, f"tests do not compile: {t.tests_error.get('message', '')}"
    if t.code_error:
        kind = t.code_error.get("kind")
        status = RunStatus.MEMORY if kind == "MemoryError" else RunStatus.ERROR
        return status, f"the code raised {t.code_error.get('message', kind)}"
    if t.done:
        return _verdict(t)
    if sig is not None:
        return RunStatus.KILLED, f"killed by {_signame(sig)}"
    if not t.started:
        tail = obs.stderr.strip().splitlines()[-3:]
        return RunStatus.SANDBOX_ERROR, "the harness did not start: " + (" | ".join(tail) or f"exit {obs.exit_code}")
    return RunStatus.ERROR, f"the process exited (code {obs.exit_code}) before the tests finished"


def _verdict(t: Transcript) -> tuple[RunStatus, str]:
    bad = [e for e in t.tests if e["status"] != "passed"]
    if not bad:
        return RunStatus.PASSED, "" if t.tests else "no tests: only checked that the code runs"
    if any(e.get("kind") == "MemoryError" for e in bad):
        return RunStatus.MEMORY, "a test ran out of memory (MemoryError)"
    first = bad[0]
    return RunStatus.FAILED, f"{len(bad)}/{len(t.tests)} tests failed; test {first['index']}: {first.get('message', '')}"


def _outcomes(t: Transcript, declared: int | None, status: RunStatus) -> list[TestOutcome]:
    if t.violation:
        total = declared if declared is not None else (t.num_tests or 0)
        return [TestOutcome(i, TestStatus.NOT_RUN, "result protocol violated") for i in range(total)]
    total = t.num_tests if t.num_tests is not None else (declared or 0)
    out = [TestOutcome(e["index"], TestStatus(e["status"]), e.get("message", "")) for e in t.tests]
    out += [TestOutcome(i, TestStatus.NOT_RUN) for i in range(len(out), total)]
    return out


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
