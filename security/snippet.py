"""`Snippet`: the parseable part of a (possibly partial) Python suggestion, with a map back.

A suggestion is often not a whole module: it is indented (a method body), stops mid-statement
or leaves brackets open. We try, in order and within a small budget: the whole text, the text
dedented, with its open brackets closed, with an empty block completed, and with up to a few
trailing (and leading) lines dropped. The first candidate that parses wins.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

MAX_REPAIR_CHARS = 20_000
"""Beyond this size only the whole (dedented) text is tried: each attempt is a full parse."""
MAX_DROP_TAIL = 8
MAX_DROP_HEAD = 2
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` split the way LSP and Python's parser count them (\\n, \\r\\n, \\r only)."""
    return _LINE_BREAK.split(text)


def _split_keepends(text: str) -> list[str]:
    parts = _LINE_BREAK.split(text)
    breaks = _LINE_BREAK.findall(text)
    lines = [part + brk for part, brk in zip(parts, breaks + [""], strict=True)]
    return lines if lines[-1] else lines[:-1]


@dataclass(frozen=True)
class Snippet:
    """Python source that parses, and where it sits in the original text.

    Invariant: source line ``i`` (1-based) is original line ``first_line + i - 1`` (0-based) with
    ``indent`` leading characters removed; lines past ``num_lines`` were added (closers, ``pass``).
    """

    source: str
    tree: ast.Module
    first_line: int
    indent: int
    num_lines: int

    def to_original(self, lineno: int, col: int) -> tuple[int, int]:
        """Map a 1-based ``lineno`` and 0-based ``col`` in ``source`` to 0-based original ones."""
        line = min(max(lineno, 1), self.num_lines) - 1
        return self.first_line + line, max(col, 0) + self.indent


def parse_snippet(text: str) -> Snippet | None:
    """The first repair of ``text`` that parses as Python, or ``None`` when none does."""
    lines = _split_keepends(text)
    if not lines:
        return None
    for first_line, body in _bodies(lines, len(text) <= MAX_REPAIR_CHARS):
        snippet = _try_body(first_line, body)
        if snippet is not None:
            return snippet
    return None


def _bodies(lines: list[str], repair: bool) -> Iterator[tuple[int, list[str]]]:
    yield 0, lines
    if not repair:
        return
    n = len(lines)
    for head in range(0, min(MAX_DROP_HEAD, n - 1) + 1):
        for tail in range(0, min(MAX_DROP_TAIL, n - head - 1) + 1):
            if head or tail:
                yield head, lines[head : n - tail]


def _try_body(first_line: int, body: list[str]) -> Snippet | None:
    raw = "".join(body)
    dedented = textwrap.dedent(raw)
    indent = _removed_indent(raw, dedented)
    for source in _repairs(dedented):
        tree = _parse(source)
        if tree is not None:
            return Snippet(source, tree, first_line, indent, len(body))
    return None


def _repairs(source: str) -> Iterator[str]:
    yield source
    closers = _missing_closers(source)
    if closers:
        yield source.rstrip("\n") + closers + "\n"
    stripped = source.rstrip()
    if stripped.endswith(":"):
        last = stripped.splitlines()[-1]
        pad = len(last) - len(last.lstrip())
        yield stripped + "\n" + " " * (pad + 4) + "pass\n"
    yield from _blank_error_lines(source)


def _blank_error_lines(source: str, attempts: int = 3) -> Iterator[str]:
    """Replace each line a SyntaxError points at with ``pass`` at its indentation.

    An editor buffer is often broken mid-file (the line being typed); the rest must still be scanned, and
    line numbers stay aligned because no line is added or removed.
    """
    lines = source.split("\n")
    for _ in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse("\n".join(lines))
            return
        except SyntaxError as exc:
            i = (exc.lineno or 0) - 1
            if not 0 <= i < len(lines):
                return
            blank = lines[i][: len(lines[i]) - len(lines[i].lstrip())] + "pass"
            if lines[i] == blank:
                return
            lines[i] = blank
            yield "\n".join(lines)
        except (ValueError, RecursionError, MemoryError):
            return


def _parse(source: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes in suggestions
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _removed_indent(raw: str, dedented: str) -> int:
    for before, after in zip(raw.splitlines(), dedented.splitlines(), strict=False):
        if after.strip():
            return len(before) - len(after)
    return 0


def _missing_closers(source: str) -> str:
    """Closing brackets for those left open at the end of ``source`` (innermost first)."""
    stack: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.OP and tok.string in _CLOSERS:
                stack.append(_CLOSERS[tok.string])
            elif tok.type == tokenize.OP and tok.string in _CLOSERS.values() and stack:
                stack.pop()
    except (tokenize.TokenError, SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    return "".join(reversed(stack))
