"""What a check is: something that runs a function of the document and can pass or fail."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class CheckKind(str, enum.Enum):
    DOCTEST = "doctest"
    """One example of the function's docstring (examples of one docstring share their globals)."""
    ASSERT = "assert"
    """An ``assert`` in the same file that calls the function (with the statements before it, in a
    ``__main__`` block)."""
    TEST = "test"
    """A test function (this file or a workspace test file) that calls the function."""
    SUITE = "suite"
    """A test of the repository's coverage map that runs the function: run in the repository's own
    environment (sandbox/suite); ``node`` is its pytest id."""


@dataclass(frozen=True)
class Check:
    """One check. ``name`` is what the user reads ("test_parse", "doctest is_prime(7)")."""

    kind: CheckKind
    name: str
    source: str = ""
    """DOCTEST: the example's source; ASSERT: code to run in the module's namespace."""
    want: str = ""
    """DOCTEST: the expected output."""
    line: int = 0
    """1-based line of the check in its file (the document for DOCTEST/ASSERT)."""
    path: str = ""
    """TEST: the test file, relative to the workspace root ("" = the document itself)."""
    node: str = ""
    """TEST: ``test_name`` or ``TestClass::test_name`` (pytest's node id after the file)."""
    example: int = 0
    """DOCTEST: index of the example in the docstring."""

    @property
    def pytest_id(self) -> str:
        return f"{self.path}::{self.node}"


@dataclass(frozen=True)
class FunctionChecks:
    """The checks found for one function of one document."""

    function: str
    """Qualified name: ``is_prime`` or ``Parser.parse``."""
    def_line: int
    """0-based line of the ``def``."""
    checks: tuple[Check, ...] = field(default=())
    docstring: str | None = None
    """The function's docstring, as written (its examples are the DOCTEST checks, in order)."""
    suite: object | None = None
    """How to run the SUITE checks (a ``lsp.checks.suite_checks.SuiteChecks``), when there are any."""

    def plain(self) -> tuple[Check, ...]:
        """The checks one sandbox job runs (all but SUITE)."""
        return tuple(c for c in self.checks if c.kind is not CheckKind.SUITE)

    def of_suite(self) -> list[Check]:
        return [c for c in self.checks if c.kind is CheckKind.SUITE]

    def __bool__(self) -> bool:
        return bool(self.checks)
