"""What the editor is told about a checked suggestion: the ``codeloop/checkResult`` notification's body,
the completion item's detail, and the hint diagnostic for clients that show neither."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lsp.checks.verdict import Verdict

CHECK_RESULT = "codeloop/checkResult"
"""Server -> client notification (see ``CheckNote.params``)."""


@dataclass(frozen=True)
class CheckNote:
    """The checks behind one suggestion. ``verdict`` None: still running (the suggestion was shown
    unmarked at the deadline; a final note follows)."""

    function: str
    function_line: int
    """0-based line of the function's ``def``."""
    verdict: Verdict | None
    num_candidates: int
    final: bool = True
    changed: bool = False
    """Final note only: the best candidate is not the one shown first (ask for the suggestion again)."""

    @property
    def status(self) -> str:
        return "pending" if self.verdict is None else self.verdict.status.value

    def summary(self) -> str:
        if self.verdict is None:
            return f"checking {self.num_candidates} candidates…"
        return self.verdict.summary()

    def params(self, uri: str, version: int, line: int, character: int, text: str) -> dict[str, Any]:
        """The ``codeloop/checkResult`` notification for the suggestion ``text`` at (line, character)."""
        v = self.verdict
        return {
            "textDocument": {"uri": uri, "version": version}, "position": {"line": line, "character": character},
            "function": self.function, "functionLine": self.function_line, "status": self.status,
            "summary": self.summary(), "passed": v.num_passed if v else 0, "total": v.num_checks if v else 0,
            "candidates": self.num_candidates, "final": self.final, "changed": self.changed, "text": text,
        }
