"""Scan a code suggestion for risky code, secrets, personal data and licensed code.

``scan(text)`` returns ``Finding`` objects with 0-based ranges (LSP-ready); ``explain(finding)``
gives markdown for a hover or code action. See ``ScanConfig`` for the knobs.
Names are imported lazily so that ``import security.config`` stays cheap (no bandit, no detect-secrets):
the command line reads its defaults at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Finding", "Kind", "Related", "ScanConfig", "Severity", "explain", "scan"]

_WHERE = {
    "ScanConfig": "security.config", "explain": "security.explain", "Finding": "security.finding",
    "Kind": "security.finding", "Related": "security.finding", "Severity": "security.finding",
    "scan": "security.scanner",
}

if TYPE_CHECKING:
    from security.config import ScanConfig
    from security.explain import explain
    from security.finding import Finding, Kind, Related, Severity
    from security.scanner import scan


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'security' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
