"""The masked spans an editor sees inside a function: its whole body, a block, or the rest of a line.

- ``body``: the cursor on the first line after the signature (and docstring), indented; the body is masked.
- ``block``: the cursor at the start of a statement on its own line; masked: a compound statement, a
  statement spread over several lines, or a run of 2-3 one-line statements.
- ``line``: the cursor at a token boundary inside a one-line statement; masked: the rest of the line.

Multi-line spans fit what the editor shows (at most MAX_SPAN_LINES code lines and MAX_SPAN_CHARS
characters, as the inline-completion settings cut a suggestion); a line span leaves the editor in
single-line mode (``lsp.context.choose_mode``), so each kind exercises the mode it is named for.
Choices among candidates are deterministic: a hash of (seed, path, position), never ``random``.
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize
from dataclasses import dataclass

from evals.repo.source import Function
from lsp.context import Cursor, Mode, choose_mode

KINDS = ("body", "block", "line")
MAX_SPAN_LINES = 12
"""Code lines of a multi-line span (lsp Settings.max_lines: a longer suggestion is cut)."""
MAX_SPAN_CHARS = 400
"""Characters of a multi-line span (about the 128 new tokens of a block suggestion)."""
MAX_LINE_CHARS = 100
"""Characters of a masked rest of line (about the 32 new tokens of a single-line suggestion)."""
MIN_REST_CHARS = 3
"""A rest of line shorter than this (``)``, ``:``) is not worth a task."""
MAX_RUN = 3
COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)


@dataclass(frozen=True)
class Span:
    """A masked region ``text[start:end]`` of a file; the cursor sits at ``start``."""

    kind: str
    function: str
    start: int
    end: int
    first_line: int
    """1-based line of the first masked character."""
    last_line: int

    def lines(self) -> range:
        return range(self.first_line, self.last_line + 1)


class Lines:
    """Offsets of a text's lines (1-based line numbers, as ast and tokenize count)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.rows = text.split("\n")
        self.starts = [0]
        for row in self.rows[:-1]:
            self.starts.append(self.starts[-1] + len(row) + 1)

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def end_of(self, line: int) -> int:
        return self.starts[line - 1] + len(self.rows[line - 1])

    def char_col(self, line: int, byte_col: int) -> int:
        """ast's UTF-8 byte column as a character column."""
        return len(self.rows[line - 1].encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))

    def alone_from(self, line: int, col: int) -> bool:
        """True when only indentation precedes column ``col`` on ``line``."""
        return not self.rows[line - 1][:col].strip()


def _code_lines(text: str) -> int:
    return sum(1 for ln in text.split("\n") if ln.strip() and not ln.strip().startswith("#"))


def _fits(lines: Lines, start: int, end: int) -> bool:
    middle = lines.text[start:end]
    return bool(middle.strip()) and len(middle) <= MAX_SPAN_CHARS and _code_lines(middle) <= MAX_SPAN_LINES


def body_span(fn: Function, lines: Lines) -> Span | None:
    """The body below the signature (and docstring), when it starts on its own line and fits."""
    first = next(s for s in fn.node.body if s.lineno == fn.body_start)
    col = lines.char_col(first.lineno, first.col_offset)
    if first.lineno == fn.node.lineno or not lines.alone_from(first.lineno, col):
        return None
    start, end = lines.offset(first.lineno, col), lines.end_of(fn.end)
    return Span("body", fn.qualname, start, end, first.lineno, fn.end) if _fits(lines, start, end) else None


def block_spans(fn: Function, lines: Lines) -> list[Span]:
    """Compound statements, multi-line statements, and runs of 2-3 one-line statements inside the body
    (never the whole body: that is the body task)."""
    out: list[Span] = []
    for body in _statement_lists(fn.node):
        for i, stmt in enumerate(body):
            if isinstance(stmt, COMPOUND) or _spread(stmt):
                out += _block(fn, lines, body[i:i + 1])
            else:
                for size in range(2, MAX_RUN + 1):
                    run = body[i:i + size]
                    if len(run) < size or any(_spread(s) or isinstance(s, COMPOUND) for s in run):
                        break
                    out += _block(fn, lines, run)
    whole = body_span(fn, lines)
    return [s for s in out if whole is None or (s.start, s.end) != (whole.start, whole.end)]


def _spread(stmt: ast.stmt) -> bool:
    return (stmt.end_lineno or stmt.lineno) > stmt.lineno


def _statement_lists(node: ast.AST) -> list[list[ast.stmt]]:
    """Every statement list inside a function, nested functions and classes left out."""
    found: list[list[ast.stmt]] = []
    for name in ("body", "orelse", "finalbody"):
        stmts = getattr(node, name, None)
        if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
            found.append(stmts)
            for s in stmts:
                if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    found += _statement_lists(s)
    for handler in getattr(node, "handlers", []) or []:
        found += _statement_lists(handler)
    return found


def _block(fn: Function, lines: Lines, run: list[ast.stmt]) -> list[Span]:
    if any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for s in run):
        return []
    first, last_line = run[0], run[-1].end_lineno or run[-1].lineno
    col = lines.char_col(first.lineno, first.col_offset)
    if not lines.alone_from(first.lineno, col) or ";" in lines.rows[last_line - 1]:
        return []
    start, end = lines.offset(first.lineno, col), lines.end_of(last_line)
    return [Span("block", fn.qualname, start, end, first.lineno, last_line)] if _fits(lines, start, end) else []


def line_spans(fn: Function, lines: Lines, logical: dict[int, list[int]]) -> list[Span]:
    """For each one-line logical line of the body: the rest of the line from one token boundary (chosen
    later), kept only where the editor would be in single-line mode."""
    out: list[Span] = []
    nested = _nested_rows(fn.node)
    for row in range(fn.body_start, fn.end + 1):
        cols = logical.get(row)
        if not cols or row in nested:
            continue
        text = lines.rows[row - 1]
        for col in cols:
            rest = text[col:].rstrip()
            if len(rest.strip()) < MIN_REST_CHARS or len(rest) > MAX_LINE_CHARS:
                continue
            start = lines.offset(row, col)
            if choose_mode(Cursor(row - 1, start, text[:col], "")) is not Mode.SINGLE_LINE:
                continue  # NOTE: the editor sees the line without its rest
            out.append(Span("line", fn.qualname, start, start + len(rest), row, row))
    return out


def _nested_rows(node: ast.AST) -> set[int]:
    """Rows of the functions and classes defined inside ``node`` (their lines are their own tasks)."""
    rows: set[int] = set()
    for child in ast.walk(node):
        if child is not node and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            rows.update(range(first, (child.end_lineno or child.lineno) + 1))
    return rows


def logical_lines(text: str) -> dict[int, list[int]]:
    """1-based row -> token start columns after the first token, for logical lines on one physical row
    that hold one statement (no ``;``, no string spanning rows)."""
    out: dict[int, list[int]] = {}
    row_tokens: list[tokenize.TokenInfo] = []
    skip = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in skip:
                continue
            if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if row_tokens and row_tokens[0].start[0] == tok.start[0] == row_tokens[-1].end[0]:
                    if not any(t.string == ";" for t in row_tokens) and row_tokens[0].type != tokenize.STRING:
                        out[tok.start[0]] = [t.start[1] for t in row_tokens[1:]]
                row_tokens = []
            else:
                row_tokens.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return out
    return out


def choose(spans: list[Span], seed: int, path: str, count: int = 1) -> list[Span]:
    """``count`` spans picked by a stable hash of (seed, path, position); same input, same choice."""
    def rank(s: Span) -> str:
        return hashlib.sha256(f"{seed}:{path}:{s.kind}:{s.start}:{s.end}".encode()).hexdigest()

    return sorted(sorted(spans, key=rank)[:count], key=lambda s: s.start)


def pick_line_cuts(spans: list[Span], seed: int, path: str) -> list[Span]:
    """One cut per row (the line spans of one row differ only in where the cursor is)."""
    by_row: dict[int, list[Span]] = {}
    for s in spans:
        by_row.setdefault(s.first_line, []).append(s)
    return [choose(cuts, seed, path)[0] for _, cuts in sorted(by_row.items())]
