"""Scan a code suggestion for risky code, secrets, personal data and licensed code.

``scan(text)`` returns ``Finding`` objects with 0-based ranges (LSP-ready); ``explain(finding)``
gives markdown for a hover or code action. See ``ScanConfig`` for the knobs.
Names are imported lazily so that ``import security.config`` stays cheap (no bandit, no detect-secrets):
the command line reads its defaults at start-up.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "config": ["ScanConfig"],
    "explain": ["explain"],
    "finding": ["Finding", "Kind", "Related", "Severity"],
    "scanner": ["scan"],
})
