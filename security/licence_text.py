"""Licence findings from the text itself: ``SPDX-License-Identifier:`` lines and licence phrases.

Severity follows what the licence asks of code that includes the snippet: strong copyleft
(GPL, AGPL, SSPL) high; weak or file-level copyleft (LGPL, MPL, EPL, CDDL, EUPL, CC-BY-SA) medium;
permissive licences low (attribution is still owed). One finding per licence per text.
"""

from __future__ import annotations

import re

from .finding import Finding, Kind, Severity

_SPDX_LINE = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+\-() ]+)")
_SPDX_OPERATORS = {"AND", "OR", "WITH"}
_STRONG = ("GPL", "AGPL", "SSPL", "OSL", "RPL", "Sleepycat")
_WEAK = ("LGPL", "MPL", "EPL", "CDDL", "EUPL", "CC-BY-SA", "CPL", "CECILL", "MS-RL")

# (compiled phrase, SPDX family, whether the version is read from the text after it)
_PHRASES = (
    (re.compile(r"GNU\s+Affero\s+General\s+Public\s+Licen[cs]e", re.I), "AGPL", True),
    (re.compile(r"GNU\s+(?:Lesser|Library)\s+General\s+Public\s+Licen[cs]e", re.I), "LGPL", True),
    (re.compile(r"GNU\s+General\s+Public\s+Licen[cs]e", re.I), "GPL", True),
    (re.compile(r"Licensed\s+under\s+the\s+AGPL|gnu\.org/licenses/agpl", re.I), "AGPL", True),
    (re.compile(r"Licensed\s+under\s+the\s+LGPL|gnu\.org/licenses/(?:old-licenses/)?lgpl", re.I), "LGPL", True),
    (re.compile(r"Licensed\s+under\s+the\s+GPL|gnu\.org/licenses/(?:old-licenses/)?gpl", re.I), "GPL", True),
    (re.compile(r"Mozilla\s+Public\s+Licen[cs]e", re.I), "MPL", True),
    (re.compile(r"Eclipse\s+Public\s+Licen[cs]e", re.I), "EPL", True),
    (re.compile(r"European\s+Union\s+Public\s+Licen[cs]e", re.I), "EUPL", True),
    (re.compile(r"Server\s+Side\s+Public\s+License", re.I), "SSPL", True),
    (re.compile(r"Creative\s+Commons\s+Attribution-ShareAlike|\bCC\s+BY-SA\b", re.I), "CC-BY-SA", True),
    (re.compile(r"Permission\s+is\s+hereby\s+granted,\s+free\s+of\s+charge,\s+to\s+any\s+person", re.I), "MIT", False),
    (re.compile(r"Licensed\s+under\s+the\s+Apache\s+License,?\s+Version\s+2\.0", re.I), "Apache-2.0", False),
    (re.compile(r"Redistribution\s+and\s+use\s+in\s+source\s+and\s+binary\s+forms", re.I), "BSD", False),
)
_VERSION = re.compile(r"(?:version|v\.?|-)\s*(\d(?:\.\d)?)", re.I)
_LATER = re.compile(r"any\s+later\s+version|or\s+later", re.I)


def licence_text_findings(text: str) -> list[Finding]:
    """Licence findings for SPDX identifiers and licence phrases in ``text``."""
    found: dict[str, Finding] = {}
    for match in _SPDX_LINE.finditer(text):
        for spdx in _spdx_ids(match.group(1)):
            found.setdefault(spdx, _finding(text, spdx, match.start(), match.end(), "SPDX identifier"))
    taken: list[tuple[int, int]] = []
    for pattern, family, versioned in _PHRASES:
        for match in pattern.finditer(text):
            if any(s <= match.start() < e for s, e in taken):
                continue  # "GNU Lesser General ..." already claimed this spot
            taken.append((match.start(), match.end()))
            spdx = _with_version(family, text[match.end(): match.end() + 300]) if versioned else family
            found.setdefault(spdx, _finding(text, spdx, match.start(), match.end(), "licence text"))
    return list(found.values())


def licence_severity(spdx: str) -> Severity:
    """How much a licence constrains code that copies it (see the module docstring)."""
    family = spdx.upper()
    if family.startswith(tuple(w.upper() for w in _WEAK)):
        return Severity.MEDIUM
    if family.startswith(tuple(s.upper() for s in _STRONG)):
        return Severity.HIGH
    return Severity.LOW


def _spdx_ids(expression: str) -> list[str]:
    tokens = re.split(r"[\s()]+", expression.strip())
    return [t for t in tokens if t and t.upper() not in _SPDX_OPERATORS and re.fullmatch(r"[A-Za-z0-9.+\-]+", t)]


def _with_version(family: str, after: str) -> str:
    match = _VERSION.search(after[:120])
    if not match:
        return family
    version = match.group(1) if "." in match.group(1) else match.group(1) + ".0"
    later = family in ("GPL", "LGPL", "AGPL") and _LATER.search(after)
    suffix = "-or-later" if later else ("-only" if family in ("GPL", "LGPL", "AGPL") else "")
    return f"{family}-{version}{suffix}"


def _finding(text: str, spdx: str, start: int, end: int, what: str) -> Finding:
    severity = licence_severity(spdx)
    start_line, start_col = _position(text, start)
    end_line, end_col = _position(text, end)
    advice = "copying it may oblige you to license your code the same way" if severity is not Severity.LOW \
        else "keep the notice and give attribution"
    return Finding(Kind.LICENCE, f"licence.{spdx}", severity, Severity.HIGH,
                   f"{spdx} {what} in the suggestion: {advice}", start_line, start_col, end_line, end_col)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)
