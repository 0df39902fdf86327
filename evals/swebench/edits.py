"""Search/replace edits: the prompt format, parsing them from model output, applying them to files."""

from __future__ import annotations

import re
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


def apply_edits(root: Path, edits: list[Edit]) -> list[str]:
    """Apply edits whose SEARCH text occurs in the file (first occurrence); returns why each other one failed."""
    problems = []
    for e in edits:
        path = (root / e.path).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            problems.append(f"{e.path}: no such file")
            continue
        text = path.read_text()
        if not e.search.strip() or e.search not in text:
            problems.append(f"{e.path}: SEARCH text not found")
            continue
        path.write_text(text.replace(e.search, e.replace, 1))
    return problems
