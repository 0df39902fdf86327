"""Scan a code suggestion for risky code, secrets, personal data and licensed code.

``scan(text)`` returns ``Finding`` objects with 0-based ranges (LSP-ready); ``explain(finding)``
gives markdown for a hover or code action. See ``ScanConfig`` for the knobs.
"""

from .config import ScanConfig
from .explain import explain
from .finding import Finding, Kind, Related, Severity
from .scanner import scan

__all__ = ["Finding", "Kind", "Related", "ScanConfig", "Severity", "explain", "scan"]
