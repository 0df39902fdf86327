"""Search/replace edits: the prompt format, parsing them from model output, applying them to files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

EDIT_FORMAT = """Answer with one or more edits in exactly this format:

path/to/file.py
<<<<<<< SEARCH
lines copied exactly from the file
=======
the replacement lines
>>>>>>> REPLACE
"""

_EDIT = re.compile(r"^(\S+\.\w+)\s*\n<<<<<<< SEARCH\n(.*?)\n?=======\n(.*?)\n?>>>>>>> REPLACE", re.S | re.M)


@dataclass(frozen=True)
class Edit:
    path: str
    search: str
    replace: str


def parse_edits(text: str) -> list[Edit]:
    """Every well-formed edit block in ``text`` (code fences around them are ignored)."""
    text = re.sub(r"^```\w*\s*$", "", text, flags=re.M)
    return [Edit(m.group(1).strip("`*"), m.group(2), m.group(3)) for m in _EDIT.finditer(text)]


def apply_edits(root: Path, edits: list[Edit], shown: Sequence[str] = ()) -> list[str]:
    """Apply edits whose SEARCH text occurs in the file (first occurrence); returns why each other one failed.

    An edit naming a file that does not exist (small models copy the format's ``path/to/file.py``) goes to
    the one file among ``shown`` (the files the model was shown) that contains its SEARCH text, if exactly
    one does, as Aider-style tools resolve a wrong path.
    """
    problems = []
    for e in edits:
        path = _target(root, e, shown)
        if path is None:
            problems.append(f"{e.path}: no such file")
            continue
        text = path.read_text()
        if not e.search.strip() or e.search not in text:
            problems.append(f"{e.path}: SEARCH text not found")
            continue
        path.write_text(text.replace(e.search, e.replace, 1))
    return problems


def _target(root: Path, edit: Edit, shown: Sequence[str]) -> Path | None:
    base = root.resolve()
    path = (root / edit.path).resolve()
    if path.is_relative_to(base) and path.is_file():
        return path
    if not edit.search.strip():
        return None
    matches = [p for p in ((root / f).resolve() for f in shown)
               if p.is_relative_to(base) and p.is_file() and edit.search in p.read_text(errors="replace")]
    return matches[0] if len(matches) == 1 else None
