"""Functions for the licence benchmark: extracted from a source tree, and their edited variants.

Variants: ``verbatim``; ``renamed`` (every identifier that is not a keyword or builtin replaced
consistently); ``edited`` (one line inserted in the middle, one other simple line deleted).
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import random
import re
import sysconfig
import textwrap
import tokenize
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_BUILTINS = set(dir(builtins))
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True)
class Function:
    """A function's source text and where it came from (``path:line``, 1-based)."""

    origin: str
    source: str


def functions_in(root: Path, min_lines: int = 8, max_lines: int = 80,
                 exclude_parts: tuple[str, ...] = ()) -> Iterator[Function]:
    """Top-level and method functions of ``*.py`` files under ``root`` with a size in range."""
    for path in sorted(root.rglob("*.py")):
        if any(part in path.parts for part in exclude_parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        yield from functions_in_text(str(path), text, min_lines, max_lines)


def functions_in_text(origin: str, text: str, min_lines: int = 8, max_lines: int = 80) -> Iterator[Function]:
    """Functions of one file's ``text`` with ``min_lines`` to ``max_lines`` lines (decorators included)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    lines = _LINE.findall(text)  # the parser's lines: \n, \r\n or \r end one
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if min_lines <= node.end_lineno - first + 1 <= max_lines:
                yield Function(f"{origin}:{first}", "".join(lines[first - 1: node.end_lineno]))


def split_of(name: str) -> str:
    """``"tune"`` for about a third of copyleft project names, else ``"measure"``: a fixed split by
    project so that parameters are never chosen on what they are judged on."""
    return "tune" if zlib.crc32(name.lower().encode()) % 3 == 0 else "measure"


def permissive_split(name: str) -> str:
    """For permissive code (a stdlib module, a package): ``"tune"``, ``"background"`` (the permissive
    code whose k-grams are kept out of the index) or ``"measure"``, a third each, fixed by name."""
    return ("tune", "background", "measure")[zlib.crc32(name.lower().encode()) % 3]


def sample(functions: list[Function], n: int, seed: int) -> list[Function]:
    """``n`` functions drawn without replacement by a seeded generator (all when fewer)."""
    return random.Random(seed).sample(functions, min(n, len(functions)))


def stdlib_root() -> Path:
    """The running Python's standard-library source directory."""
    return Path(sysconfig.get_paths()["stdlib"])


def renamed(source: str) -> str:
    """``source`` with each non-keyword, non-builtin identifier renamed consistently."""
    names: dict[str, str] = {}
    edits = []
    for tok in _tokens(source):
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string) and tok.string not in _BUILTINS:
            new = names.setdefault(tok.string, f"n{len(names)}_{tok.string[:1].lower()}x")
            edits.append((tok.start, tok.end, new))
    return _apply(source, edits)


def edited(source: str, seed: int) -> str:
    """``source`` with a ``print`` statement inserted before a middle statement and another
    one-line statement deleted (both chosen among the function's body statements)."""
    lines = source.splitlines(keepends=True)
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return source
    stmts = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and n is not tree.body[0]]
    if not stmts:
        return source
    rng = random.Random(seed)
    anchor = sorted(stmts, key=lambda n: n.lineno)[len(stmts) // 2].lineno - 1
    simple = [n.lineno - 1 for n in stmts if n.lineno == n.end_lineno and n.lineno - 1 != anchor
              and isinstance(n, ast.Expr | ast.Assign | ast.AugAssign | ast.Return)
              and not isinstance(getattr(n, "value", None), ast.Constant)]
    if simple:
        gone = rng.choice(simple)
        del lines[gone]
        anchor -= 1 if gone < anchor else 0
    line = lines[anchor]
    indent = line[: len(line) - len(line.lstrip())]
    lines.insert(anchor, f'{indent}print("checkpoint", {rng.randint(0, 99)})\n')
    return "".join(lines)


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return []


def _apply(source: str, edits: list[tuple[tuple[int, int], tuple[int, int], str]]) -> str:
    lines = source.splitlines(keepends=True)
    for (row, col), (_, end_col), new in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[end_col:]
    return "".join(lines)
