"""`Finding`: one thing the scanner found in a piece of code, with an LSP-friendly range."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum


class Kind(str, Enum):
    """What sort of problem a finding is."""

    RISKY = "risky"
    SECRET = "secret"
    PII = "pii"
    LICENCE = "licence"
    ERROR = "error"


class Severity(str, Enum):
    """How bad a finding is; ordered low < medium < high."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return ("low", "medium", "high").index(self.value)


@dataclass(frozen=True)
class Related:
    """Where matched code or licence text comes from (licence findings only)."""

    source: str
    """Path inside the indexed project, prefixed by project and version (``pylint-3.3.1/pylint/x.py``)."""
    licence: str
    """SPDX identifier of the source's licence."""
    line: int | None = None
    """0-based first line of the matching region in ``source``, when known."""
    project: str | None = None
    """PyPI name of the project the matching code belongs to (index matches)."""
    version: str | None = None
    """That project's indexed version."""
    path: str | None = None
    """The file inside the project's sdist (``source`` without the ``name-version/`` prefix)."""


@dataclass(frozen=True)
class Finding:
    """One finding. Lines and columns are 0-based and refer to the text given to ``scan``.

    Invariants: ``(start_line, start_col) <= (end_line, end_col)``; columns count characters
    (code points) within the line, so the range is usable as an LSP range after UTF-16 conversion
    for non-BMP characters; ``related`` is set only for licence matches against the index.
    """

    kind: Kind
    rule_id: str
    """Stable id: bandit test ids (``B602``), ours (``CL001``), ``secret.<Plugin>``, ``pii.email``,
    ``licence.<SPDX>`` and ``scan.error``."""
    severity: Severity
    confidence: Severity
    message: str
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    related: Related | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (enums as their string values)."""
        out = asdict(self)
        out["kind"] = self.kind.value
        out["severity"] = self.severity.value
        out["confidence"] = self.confidence.value
        return out
