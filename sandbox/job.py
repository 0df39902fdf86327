"""One unit of sandbox work, normalised, plus the refusal of input no backend should see."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.types import MOUNT_ROOT, Limits, Mount, RunResult, RunStatus

Tests = str | Sequence[str]


@dataclass(frozen=True)
class Job:
    """Code and its tests as text. ``tests`` is assert code (split per top-level assert inside the
    sandbox) or a list of snippets (one test each); empty means "only check that the code runs"."""

    code: str
    tests: str | tuple[str, ...] = ""
    limits: Limits = field(default_factory=Limits)
    mounts: tuple[Mount, ...] = ()
    """Read-only host paths the run sees (validated by ``make_job``)."""
    reference: str = ""
    """A trusted program (a benchmark's reference solution) that the harness runs against the same tests
    first, in its own process: its values at ``__codeloop_same__(value)`` asserts are the expected values
    the code's values must match (differential tests; see sandbox/harness.py). Empty: no reference run."""

    @property
    def declared_tests(self) -> int | None:
        """How many tests the parent knows of before running (None for an assert string)."""
        return None if isinstance(self.tests, str) else len(self.tests)


def make_job(code: str | bytes, tests: Tests | bytes | None, limits: Limits | None,
             mounts: Sequence[Mount] = (), reference: str | bytes = "") -> Job | RunResult:
    """A Job, or a RunResult (status ERROR) explaining why the input cannot run at all."""
    limits = limits or Limits()
    problem = mount_problem(mounts)
    if problem:
        return _refuse(problem)
    code_text = _text(code, "code")
    if isinstance(code_text, RunResult):
        return code_text
    reference_text = _text(reference or "", "reference")
    if isinstance(reference_text, RunResult):
        return reference_text
    if tests is None:
        tests = ""
    if isinstance(tests, (str, bytes)):
        norm = _text(tests, "tests")
    elif isinstance(tests, Sequence):
        items = [_text(t, f"test {i}") for i, t in enumerate(tests)]
        bad = next((t for t in items if isinstance(t, RunResult)), None)
        norm = bad or tuple(items)  # type: ignore[arg-type]
    else:
        norm = _refuse(f"tests must be a string or a list of strings, not {type(tests).__name__}")
    if isinstance(norm, RunResult):
        return norm
    size = len((code_text + reference_text).encode("utf-8", "surrogatepass")) + sum(
        len(t.encode("utf-8", "surrogatepass")) for t in ([norm] if isinstance(norm, str) else norm)
    )
    if size > limits.max_input_bytes:
        return _refuse(f"input of {size} bytes exceeds max_input_bytes={limits.max_input_bytes}")
    return Job(code=code_text, tests=norm, limits=limits, mounts=tuple(mounts), reference=reference_text)


def mount_problem(mounts: Sequence[Mount]) -> str | None:
    """Why ``mounts`` cannot be honoured (None when they can): sources must be absolute existing paths,
    targets distinct normalised absolute paths strictly under MOUNT_ROOT."""
    seen: set[str] = set()
    for m in mounts:
        if not isinstance(m, Mount):
            return f"a mount must be a sandbox Mount, not {type(m).__name__}"
        if not os.path.isabs(m.source) or not os.path.exists(m.source):
            return f"mount source {m.source!r} is not an existing absolute path"
        if posixpath.normpath(m.target) != m.target or not m.target.startswith(MOUNT_ROOT + "/"):
            return f"mount target {m.target!r} must be a normalised path under {MOUNT_ROOT}/"
        if m.target in seen:
            return f"mount target {m.target!r} is used twice"
        seen.add(m.target)
    return None


def _text(value: object, what: str) -> str | RunResult:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _refuse(f"{what} is not valid UTF-8 (byte {exc.start}: {value[exc.start:exc.start + 1]!r})")
    if not isinstance(value, str):
        return _refuse(f"{what} must be str or bytes, not {type(value).__name__}")
    if "\x00" in value:
        return _refuse(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return _refuse(f"{what} is not encodable as UTF-8 (position {exc.start})")
    return value


def _refuse(message: str) -> RunResult:
    return RunResult(status=RunStatus.ERROR, message=message)


def unreadable_mount(job: Job) -> str | None:
    """Why the sandbox's unprivileged user (an "other" user on the host) cannot read one of ``job``'s
    mount sources; None when it can read them all.

    That user opens each source (bwrap) or reads through it (docker): every directory above it needs
    o+x, the path itself o+r (and o+x for a directory)."""
    for m in job.mounts:
        p = Path(m.source)
        for parent in reversed(p.parents):
            if not parent.stat().st_mode & 0o001:
                return f"mount source {p} is unreadable to the sandbox's unprivileged user ({parent} is not o+x)"
        mode = p.stat().st_mode
        need = 0o005 if p.is_dir() else 0o004
        if mode & need != need:
            return f"mount source {p} is unreadable to the sandbox's unprivileged user (mode {mode & 0o777:o})"
    return None
