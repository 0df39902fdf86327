"""Which function the cursor is in, and the module-level statements around it, on a half-typed document.

A document being edited rarely parses: the body the user is about to write is missing. ``read_module``
parses it with a ``pass`` in the hole at the cursor; when that still fails (an unclosed bracket elsewhere),
each top-level statement is parsed on its own and those that do not parse are left out. Pure: no I/O.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

INDENT = "    "


@dataclass(frozen=True)
class FunctionSite:
    """A top-level function, or a method of a top-level class, that contains the cursor."""

    name: str
    qualname: str
    """``name`` or ``Class.name``."""
    def_line: int
    """0-based line of the ``def`` (decorators excluded)."""
    docstring: str | None
    docstring_line: int
    """1-based line where the docstring starts (0 when there is none)."""


@dataclass
class ModuleView:
    """The parts of a document that parse: top-level statements and the function at the cursor."""

    statements: list[ast.stmt] = field(default_factory=list)
    site: FunctionSite | None = None


def read_module(text: str, line: int, character: int) -> ModuleView:
    """The document's top-level statements and the function containing (line, character).

    ``character`` is a Python index into the line. The statement holding the cursor is parsed with a
    ``pass`` at the cursor so that an empty body still parses.
    """
    holed = with_hole(text, line, character)
    tree = parse_or_none(holed)
    if tree is not None:
        return ModuleView(list(tree.body), _site(tree.body, line))
    view = ModuleView()
    for start, chunk in top_level_chunks(holed):
        parsed = parse_or_none("\n" * start + chunk)
        if parsed is None:
            continue
        view.statements.extend(parsed.body)
        view.site = view.site or _site(parsed.body, line)
    return view


def with_hole(text: str, line: int, character: int) -> str:
    """``text`` with a ``pass`` statement where a block would go at the cursor (line numbers unchanged
    unless the cursor ends a block opener, when the ``pass`` goes on a line of its own after it)."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return text
    row = lines[line]
    before, after = row[:character], row[character:]
    if not before.strip() and not after.strip():
        lines[line] = before + "pass"
    elif before.rstrip().endswith(":") and not after.strip():
        indent = before[: len(before) - len(before.lstrip())]
        lines[line] = row + "\n" + indent + INDENT + "pass"
    return "\n".join(lines)


def top_level_chunks(text: str) -> list[tuple[int, str]]:
    """(0-based first line, source) of each top-level statement, found from column-0 lines (outside
    triple-quoted strings). Decorators stay with what they decorate."""
    starts: list[int] = []
    in_string: str | None = None
    lines = text.split("\n")
    for i, row in enumerate(lines):
        opens_here = in_string is None and row[:1] not in ("", " ", "\t", "#", ")", "]", "}")
        if opens_here and not (starts and lines[starts[-1]].startswith("@")):
            starts.append(i)
        in_string = _string_state(row, in_string)
    bounds = zip(starts, starts[1:] + [len(lines)], strict=True)
    return [(a, "\n".join(lines[a:b])) for a, b in bounds]


def _string_state(row: str, in_string: str | None) -> str | None:
    """Which triple quote is open after ``row`` (a heuristic: escapes and single quotes are ignored)."""
    i = 0
    while i < len(row):
        if in_string is None and row[i] == "#":
            break
        for quote in ('"""', "'''"):
            if row.startswith(quote, i) and in_string in (None, quote):
                in_string = None if in_string else quote
                i += 2
                break
        i += 1
    return in_string


def parse_or_none(source: str) -> ast.Module | None:
    """The module, or None when ``source`` does not parse."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _site(body: list[ast.stmt], line: int) -> FunctionSite | None:
    row = line + 1
    for node in body:
        if not (node.lineno <= row <= (node.end_lineno or node.lineno)):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return _function_site(node, node.name)
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                inside = item.lineno <= row <= (item.end_lineno or item.lineno)
                if inside and isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    return _function_site(item, f"{node.name}.{item.name}")
    return None


def _function_site(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str) -> FunctionSite:
    doc = ast.get_docstring(node, clean=False)
    first = node.body[0] if node.body else None
    doc_line = first.lineno if doc is not None and first is not None else 0
    return FunctionSite(node.name, qualname, node.lineno - 1, doc, doc_line)
