"""One unit of sandbox work, normalised, plus the refusal of input no backend should see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sandbox.types import Limits, RunResult, RunStatus

Tests = str | Sequence[str]


@dataclass(frozen=True)
class Job:
    """Code and its tests as text. ``tests`` is assert code (split per top-level assert inside the
    sandbox) or a list of snippets (one test each); empty means "only check that the code runs"."""

    code: str
    tests: str | tuple[str, ...] = ""
    limits: Limits = field(default_factory=Limits)

    @property
    def declared_tests(self) -> int | None:
        """How many tests the parent knows of before running (None for an assert string)."""
        return None if isinstance(self.tests, str) else len(self.tests)


def make_job(code: str | bytes, tests: Tests | bytes | None, limits: Limits | None) -> Job | RunResult:
    """A Job, or a RunResult (status ERROR) explaining why the input cannot run at all."""
    limits = limits or Limits()
    code_text = _text(code, "code")
    if isinstance(code_text, RunResult):
        return code_text
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
    size = len(code_text.encode("utf-8", "surrogatepass")) + sum(
        len(t.encode("utf-8", "surrogatepass")) for t in ([norm] if isinstance(norm, str) else norm)
    )
    if size > limits.max_input_bytes:
        return _refuse(f"input of {size} bytes exceeds max_input_bytes={limits.max_input_bytes}")
    return Job(code=code_text, tests=norm, limits=limits)


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
