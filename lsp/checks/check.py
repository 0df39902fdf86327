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

    def __bool__(self) -> bool:
        return bool(self.checks)
