"""Rule CL005: destructive shell commands (``rm -rf /``, ``mkfs``, ``dd of=/dev/sda``, fork bomb).

In Python these only count inside string literals (what a program could hand to a shell); in
any other text (a shell suggestion) every non-comment line is checked.
"""

from __future__ import annotations

import io
import re
import tokenize

from .finding import Finding, Kind, Severity
from .snippet import Snippet

_END = r"(?=$|[\s\"'`;&|)])"
_PATTERNS = (
    ("recursive delete of /, ~ or $HOME",
     re.compile(r"\brm\s+(?:-{1,2}[\w-]+\s+)*-\w*[rR]\w*\s+(?:-{1,2}[\w-]+\s+)*"
                r"(?:/\*?|~/?\*?|\$HOME/?\*?|\$\{HOME\}/?\*?)" + _END)),
    ("filesystem creation (erases a device)", re.compile(r"\bmkfs(?:\.\w+)?\s+\S")),
    ("raw write to a disk device", re.compile(r"\bdd\b[^\n]*\bof=/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk)")),
    ("redirect onto a disk device", re.compile(r">\s*/dev/(?:sd[a-z]|hd[a-z]|nvme\d|vd[a-z]|mmcblk\d)")),
    ("fork bomb", re.compile(r":\s*\(\s*\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:")),
    ("recursive chmod 777 of /", re.compile(r"\bchmod\s+-R\s+0?777\s+/" + _END)),
)


def destructive_findings(text_lines: list[str], snippet: Snippet | None, max_line_chars: int) -> list[Finding]:
    """CL005 findings in ``text_lines``; when ``snippet`` is set only inside its string literals."""
    spans = _string_spans(snippet) if snippet is not None else None
    findings = []
    for line_no, line in enumerate(text_lines):
        if len(line) > max_line_chars or (spans is None and line.lstrip().startswith(("#", "//"))):
            continue
        for title, pattern in _PATTERNS:
            for match in pattern.finditer(line):
                if spans is None or _inside(spans, line_no, match.start()):
                    findings.append(Finding(
                        Kind.RISKY, "CL005", Severity.HIGH, Severity.MEDIUM,
                        f"Destructive shell command: {title} (`{match.group(0).strip()}`)",
                        line_no, match.start(), line_no, match.end()))
    return findings


def _string_spans(snippet: Snippet) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(snippet.source).readline):
            if tok.type == tokenize.STRING:
                spans.append((snippet.to_original(*tok.start), snippet.to_original(*tok.end)))
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    return spans


def _inside(spans: list[tuple[tuple[int, int], tuple[int, int]]], line: int, col: int) -> bool:
    return any(start <= (line, col) < end for start, end in spans)
