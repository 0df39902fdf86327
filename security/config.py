"""`ScanConfig`: which detectors run and their thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

DEFAULT_INDEX_PATH = Path(__file__).parent / "data" / "copyleft.idx"
LABELLED_DIR = Path(__file__).parent / "data" / "labelled"
"""Hand-labelled snippets per detector (risky, secret, pii): the detector benchmark's ground truth."""
DEFAULT_K = 20
"""Tokens per k-gram of a licence fingerprint (security/fingerprint.py)."""
DEFAULT_W = 8
"""Winnowing window of a licence fingerprint: one kept per ``DEFAULT_W`` consecutive k-grams."""
DEFAULT_MIN_LITERAL_CHARS = 24
"""String literals at least this long (whitespace collapsed) are fingerprinted as they are, apart from the k-grams."""
DEFAULT_MAX_PROJECTS_PER_HASH = 4
"""A fingerprint found in more indexed projects than this is common code, not evidence of copying."""
CANDIDATES_PATH = Path(__file__).parent / "data" / "copyleft_candidates.tsv"
"""Projects checked for the shipped index (security/index_sources.py)."""
DEFAULT_SDIST_CACHE = Path.home() / ".cache" / "codeloop" / "scan"
"""Where ``codeloop scan index --projects`` keeps downloaded sdists."""
DEFAULT_DISABLED_RULES = frozenset({"B101", "B404", "B603", "B607"})


class MatchEvidence(Protocol):
    """What ``MatchThresholds`` reads of a match (``index.IndexMatch``; the index imports this module)."""

    num_shared: int
    num_tokens: int
    num_literals: int

    @property
    def fraction(self) -> float: ...


@dataclass(frozen=True)
class MatchThresholds:
    """When the index's best match is evidence of copying (chosen on the tuning split:
    scripts/tune_scan_index.py); validated on construction."""

    min_matches: int = 2
    """At least this many fingerprints shared with one source file ..."""
    min_fraction: float = 0.3
    """... at least this fraction of the snippet's fingerprints ..."""
    min_tokens: int = 40
    """... and at least this many of the snippet's normalised tokens inside shared k-grams: a
    docstring is one token, so a function that is mostly docstring shares a k-gram or two of
    boilerplate (``def f(x: int) -> T: \"\"\"...\"\"\" return x.y(z=z)``) with many projects ..."""
    min_literals: int = 1
    """... unless at least this many of its long string literals (a docstring, a message) are in the
    matched file verbatim: what a copy of a function that is mostly docstring shares and a
    look-alike does not."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_fraction <= 1.0:
            raise ValueError("min_fraction must be within [0, 1]")
        if self.min_matches < 1 or self.min_tokens < 0 or self.min_literals < 1:
            raise ValueError("min_matches and min_literals must be >= 1, min_tokens >= 0")

    def accepts(self, match: MatchEvidence | None) -> bool:
        return (match is not None and match.num_shared >= self.min_matches and match.fraction >= self.min_fraction
                and (match.num_tokens >= self.min_tokens or match.num_literals >= self.min_literals))


@dataclass(frozen=True)
class ScanConfig:
    """Settings for one ``scan`` call; validated on construction."""

    risky: bool = True
    """Run bandit and our own CL rules on Python code (and the destructive-shell rule on any text)."""
    secrets: bool = True
    """Run detect-secrets plugins."""
    pii: bool = True
    """Look for e-mail addresses, phone numbers and public IPv4 addresses."""
    licence_text: bool = True
    """Look for SPDX identifiers and characteristic licence phrases."""
    licence_index: bool = True
    """Match the code against the fingerprint index of known copyleft code."""
    index_path: Path | None = DEFAULT_INDEX_PATH
    """Fingerprint index file (``codeloop scan index``); ``None`` or a missing file disables matching."""
    max_chars: int = 200_000
    """Longer input is cut here and a ``scan.truncated`` finding says so."""
    max_line_chars: int = 5_000
    """Lines longer than this are not given to regex detectors (they are typically minified data)."""
    entropy_limit_base64: float = 4.5
    entropy_limit_hex: float = 3.0
    entropy_needs_keyword: bool = True
    """Report high-entropy strings only on lines that also name a secret (key, token, password, ...)."""
    index_thresholds: MatchThresholds = field(default_factory=MatchThresholds)
    """When a licence-index match becomes a finding."""
    min_severity: str = "low"
    """Drop findings below this severity."""
    disabled_rules: frozenset[str] = field(default_factory=lambda: DEFAULT_DISABLED_RULES)
    """Rule ids never reported. By default bandit's tests that fire on most ordinary code: asserts
    (B101), ``import subprocess`` (B404), subprocess with an argument list (B603), partial
    executable paths (B607)."""

    def __post_init__(self) -> None:
        if self.max_chars <= 0 or self.max_line_chars <= 0:
            raise ValueError("max_chars and max_line_chars must be positive")
        if self.min_severity not in ("low", "medium", "high"):
            raise ValueError("min_severity must be low, medium or high")
