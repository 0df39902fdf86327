"""Typed results at the sandbox boundary: what a run was allowed and what came of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class RunStatus(str, enum.Enum):
    PASSED = "passed"                # every test ran and passed
    FAILED = "failed"                # the code ran; at least one test failed
    ERROR = "error"                  # the code itself failed (syntax error, exception outside a test)
    TIMEOUT = "timeout"              # the parent's wall clock ran out
    MEMORY = "memory"                # killed for exceeding the memory limit
    KILLED = "killed"                # killed by a signal for another reason (pids, output cap, crash)
    SANDBOX_ERROR = "sandbox_error"  # the sandbox itself could not run the job


class TestStatus(str, enum.Enum):
    __test__ = False  # not a pytest test class
    PASSED = "passed"
    FAILED = "failed"     # assertion failed
    ERROR = "error"       # another exception in the test
    NOT_RUN = "not_run"   # the run ended before this test finished


@dataclass(frozen=True)
class Limits:
    """Resources one run may use. The parent enforces the wall clock."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    pids: int = 64
    cpus: float = 1.0
    tmpfs_mb: int = 64
    max_output_bytes: int = 64 * 1024
    """Bytes of stdout and of stderr kept in the result (the rest is counted, then dropped)."""
    kill_output_bytes: int = 8 * 1024 * 1024
    """Total output (stdout + stderr) past which the run is killed (status KILLED)."""
    max_input_bytes: int = 16 * 1024 * 1024
    """Largest code + tests accepted; larger input is refused with status ERROR."""

    def __post_init__(self) -> None:
        for name in ("timeout_s", "memory_mb", "pids", "cpus", "tmpfs_mb", "max_output_bytes",
                     "kill_output_bytes", "max_input_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


MOUNT_ROOT = "/mnt"
"""Every mount's target lies under this directory (a fresh tmpfs in the run), so a mount can never hide
the sandbox's own files (interpreter, harness, /work)."""


@dataclass(frozen=True)
class Mount:
    """A host file or directory the run sees READ-ONLY at ``target`` (under MOUNT_ROOT).

    Used to let code under test import the user's workspace and libraries without being able to change
    them. The run's unprivileged user must be able to read ``source`` (the bwrap backend checks the mode
    bits on the whole path and refuses the run otherwise)."""

    source: str
    """Absolute host path."""
    target: str
    """Absolute path inside the run, under MOUNT_ROOT."""


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a pytest test class
    index: int
    status: TestStatus
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    tests: list[TestOutcome] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    exit_code: int | None = None
    message: str = ""
    """Human-readable reason for a non-passing status."""
    backend: str = ""
    """Which backend ran the job (docker, docker-cold, bwrap, unsafe_subprocess); "" if none did."""

    @property
    def passed(self) -> bool:
        return self.status is RunStatus.PASSED

    @property
    def fraction_passed(self) -> float:
        """Fraction of tests passed; 0.0 when none ran (the ``fraction_passed`` reward reads this)."""
        if not self.tests:
            return 0.0
        return sum(t.status is TestStatus.PASSED for t in self.tests) / len(self.tests)
