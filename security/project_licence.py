"""`ProjectLicence`: the licence of an unpacked sdist, read from its metadata and licence files.

Nothing is guessed from the project's name or reputation. The metadata (``PKG-INFO``:
``License-Expression``, ``Classifier: License ::`` and a short ``License`` field) decides; the
top-level licence files (``LICENSE*``, ``LICENCE*``, ``COPYING*``) confirm it, give the version
when the metadata has none, and decide alone only when the metadata says nothing. A project
counts as copyleft only when every licence it offers is GPL, LGPL or AGPL: a dual licence with a
permissive alternative, or metadata and files that disagree, leave it out (``copyleft`` False,
``reason`` says why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

COPYLEFT_FAMILIES = ("AGPL", "LGPL", "GPL")
_CLASSIFIERS = {
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "GNU General Public License (GPL)": "GPL",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL",
}
_NOT_A_LICENCE = {"OSI Approved", "Other/Proprietary License", "Freely Distributable"}
# Licence texts, by their title line: (pattern, family). LGPL/AGPL before GPL, whose title they contain.
_TITLES = (
    (re.compile(r"GNU\s+AFFERO\s+GENERAL\s+PUBLIC\s+LICEN[CS]E\s+Version\s+(\d)", re.I), "AGPL"),
    (re.compile(r"GNU\s+(?:LESSER|LIBRARY)\s+GENERAL\s+PUBLIC\s+LICEN[CS]E\s+Version\s+(\d(?:\.\d)?)", re.I), "LGPL"),
    (re.compile(r"GNU\s+GENERAL\s+PUBLIC\s+LICEN[CS]E\s+Version\s+(\d)", re.I), "GPL"),
)
_PERMISSIVE_TEXTS = (
    re.compile(r"Permission\s+is\s+hereby\s+granted,\s+free\s+of\s+charge", re.I),
    re.compile(r"Redistribution\s+and\s+use\s+in\s+source\s+and\s+binary\s+forms", re.I),
    re.compile(r"Apache\s+License\s*,?\s+Version\s+2\.0", re.I),
    re.compile(r"Permission\s+to\s+use,\s+copy,\s+modify,\s+and(?:/or)?\s+distribute", re.I),
)
_SHORT = re.compile(r"\b(A|L)?GPL\s*-?\s*v?(\d(?:\.\d)?)?\s*(\+|-or-later|\s+or\s+later|-only)?", re.I)
_LONG = re.compile(r"GNU\s+(Affero\s+|Lesser\s+|Library\s+)?General\s+Public\s+Licen[cs]e"
                   r"(?:[\s,]+v(?:ersion)?\s*(\d(?:\.\d)?))?(\s*\(?or\s+(?:any\s+)?later)?", re.I)
_LICENCE_FILE = re.compile(r"^(LICEN[CS]E|COPYING)", re.I)


@dataclass(frozen=True)
class ProjectLicence:
    """Verdict on one project. ``spdx`` is its licence (SPDX id, or the family with a version
    when only that is known); ``evidence`` names what was read (metadata fields, files)."""

    spdx: str | None
    copyleft: bool
    evidence: tuple[str, ...]
    reason: str = ""


def family(spdx: str) -> str | None:
    """``GPL``/``LGPL``/``AGPL`` for an id of that family (``LGPL-2.1-or-later`` -> ``LGPL``)."""
    head = spdx.split("-", 1)[0].upper()
    return head if head in COPYLEFT_FAMILIES else None


def project_licence(root: Path) -> ProjectLicence:
    """The licence of the unpacked sdist at ``root`` (see the module docstring for the rules)."""
    try:
        pkg_info = (root / "PKG-INFO").read_text(encoding="utf-8", errors="replace")
    except OSError:
        pkg_info = ""
    meta, meta_evidence = metadata_licences(pkg_info)
    files, file_evidence = file_licences(root)
    evidence = tuple(meta_evidence + file_evidence)
    if not meta and not files:
        return ProjectLicence(None, False, evidence, "no licence in metadata or licence files")
    chosen = meta or files
    if any(family(s) is None for s in chosen):
        return ProjectLicence(" OR ".join(sorted(chosen)), False, evidence, "offers a licence that is not GPL/LGPL/AGPL")
    families = {family(s) for s in chosen}
    if len(families) > 1:
        return ProjectLicence(" OR ".join(sorted(chosen)), False, evidence, "several licence families")
    if meta and files and not {family(s) for s in files} & families:
        return ProjectLicence(sorted(meta)[0], False, evidence, "metadata and licence files disagree")
    return ProjectLicence(_most_specific(chosen, files), True, evidence)


def metadata_licences(pkg_info: str) -> tuple[set[str], list[str]]:
    """Licence ids stated by core metadata (``PKG-INFO``/``METADATA`` text) and a note per field."""
    headers = HeaderParser().parsestr(pkg_info)
    if headers.get("License-Expression"):
        expression = headers["License-Expression"].strip()
        return set(_expression_ids(expression)), [f"License-Expression: {expression}"]
    found, evidence = set(), []
    for classifier in headers.get_all("Classifier") or []:
        parts = [p.strip() for p in classifier.split("::")]
        if parts[0] != "License" or parts[-1] in _NOT_A_LICENCE:
            continue
        found.add(_CLASSIFIERS.get(parts[-1], parts[-1]))
        evidence.append(f"Classifier: {parts[-1]}")
    field = (headers.get("License") or "").strip()
    if field and field.upper() != "UNKNOWN":
        from_field = text_licences(field) if len(field) > 200 else short_licences(field)
        if from_field and not (found and from_field <= _families_of(found)):
            found |= from_field
        evidence.append(f"License: {field[:80]}")
    return found, evidence


def file_licences(root: Path) -> tuple[set[str], list[str]]:
    """Licence ids whose text is in a top-level licence file of ``root``."""
    found, evidence = set(), []
    for path in sorted(p for p in root.iterdir() if p.is_file() and _LICENCE_FILE.match(p.name)):
        ids = text_licences(path.read_text(encoding="utf-8", errors="replace")[:200_000])
        if ids:
            found |= ids
            evidence.append(f"{path.name}: {', '.join(sorted(ids))}")
    return found, evidence


def text_licences(text: str) -> set[str]:
    """Licences whose full text (title line or characteristic clause) appears in ``text``."""
    found, taken = set(), []
    for pattern, fam in _TITLES:
        for match in pattern.finditer(text):
            if any(s <= match.start() < e for s, e in taken):
                continue
            taken.append((match.start(), match.end()))
            version = match.group(1)
            found.add(f"{fam}-{version if '.' in version else version + '.0'}")
    if any(p.search(text) for p in _PERMISSIVE_TEXTS):
        found.add("permissive")
    return found


def short_licences(field: str) -> set[str]:
    """Licence ids in a short ``License:`` field (``GPLv3+``, ``LGPL-2.1``, ``GNU GPL v2``, ``MIT``)."""
    found = set()
    for match in _LONG.finditer(field):
        prefix = (match.group(1) or "").strip().lower()
        fam = {"affero": "AGPL", "lesser": "LGPL", "library": "LGPL"}.get(prefix, "GPL")
        found.add(_spdx(fam, match.group(2), bool(match.group(3))))
    if not found:
        for match in _SHORT.finditer(field):
            fam = (match.group(1) or "").upper() + "GPL"
            found.add(_spdx(fam, match.group(2), bool(match.group(3)) and "only" not in match.group(3)))
    if not found and field.strip():
        found.add(field.strip()[:60])
    return found


def _spdx(fam: str, version: str | None, later: bool) -> str:
    if not version:
        return fam
    version = version if "." in version else version + ".0"
    return f"{fam}-{version}-or-later" if later else f"{fam}-{version}"


def _expression_ids(expression: str) -> list[str]:
    """The alternatives of an SPDX expression: ``A OR (B AND C)`` -> ``[A, B AND C]``; a
    ``WITH`` exception stays attached to its licence."""
    alternatives = re.split(r"\s+OR\s+", expression.replace("(", " ").replace(")", " ").strip())
    return [" ".join(a.split()) for a in alternatives if a.strip()]


def _families_of(ids: set[str]) -> set[str]:
    return {f for s in ids if (f := family(s))} | ids


def _most_specific(chosen: set[str], files: set[str]) -> str:
    """The id that says most (version, -only/-or-later); a bare family takes the version of
    the same family's licence file."""
    best = max(chosen, key=lambda s: (len(s.split(" WITH ")[0].split("-")), s))
    if "-" not in best.split(" WITH ")[0]:
        same = sorted(f for f in files if family(f) == family(best))
        if same:
            return same[-1] + best[len(best.split(" WITH ")[0]):]
    return best


_PERMISSIVE_ID = re.compile(r"\b(MIT|BSD|Apache|ISC|PSF|Python Software Foundation|Unlicense|Zlib|HPND|CC0"
                            r"|Public Domain|0BSD|permissive|Historical Permission)", re.I)


def is_permissive(ids: set[str]) -> bool:
    """Whether every licence in ``ids`` (from ``metadata_licences``) is a permissive one."""
    return bool(ids) and all(_PERMISSIVE_ID.search(i) and family(i) is None for i in ids)
