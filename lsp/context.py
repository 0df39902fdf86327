"""Documents + cursor -> a fill-in-the-middle prompt. Pure: no I/O, no engine, no LSP objects.

Positions are LSP positions: 0-based line and a UTF-16 code-unit offset in that line. A character past the
end of its line means the end of the line (as the LSP spec says); a line past the end of the document is an
error (``PositionError``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from inference.fim import ContextFile, fim_prompt
from lsp.lines import line_end, line_start, split_lines
from lsp.snippets import Snippet, SourceFile, select

Retriever = Callable[[str, int], Sequence[Snippet]]
"""(query text, budget in chars) -> snippets to show, already laid out in prompt order."""

BLOCK_OPENERS = (":", "{", "=>", " do", "->")
"""A line ending with one of these opens a block: a suggestion after it is multi-line (also when only
closing brackets follow the cursor, as after an editor's auto-closed ``{}``)."""
LIST_OPENERS = ("(", "[")
"""Open an argument or element list: multi-line only when nothing follows on the line."""
PREFIX_ALIGN_LINES = 32
"""The prefix window starts on a multiple of this many lines, so it moves rarely while the user types
(consecutive prompts share a long prefix in the engine's prefix cache)."""
QUERY_LINES = 12
"""Complete lines above the cursor used as the snippet-retrieval query."""
QUERY_ALIGN_LINES = 8
"""The query window ends on a multiple of this many lines, so the chosen snippets (which open the prompt)
stay the same while the user types the next few lines: a new snippet set costs a full prefill."""
PREFIX_SHARE = 5 / 6
"""Share of the context budget for the prefix; the suffix gets the rest. Everything after the cursor is
prefilled again on every keystroke (it follows the changed prefix), so a short suffix keeps requests fast."""


class Mode(str, enum.Enum):
    SINGLE_LINE = "single_line"
    """Finish the current line."""
    MULTI_LINE = "multi_line"
    """Write a block (empty line, or the cursor just after a block opener)."""


class PositionError(ValueError):
    """The position is not inside the document; ``line`` is the 0-based line asked for, ``num_lines`` how
    many the document has (None when the position is negative)."""

    def __init__(self, message: str, line: int, num_lines: int | None = None) -> None:
        super().__init__(message)
        self.line, self.num_lines = line, num_lines


class ContextTooSmall(ValueError):
    """The engine's context cannot hold even a prompt without code (no suggestion is possible)."""


@dataclass(frozen=True)
class Cursor:
    """A cursor resolved against a document's text."""

    line: int
    offset: int
    """Index into the Python string of the whole document."""
    line_prefix: str
    """Text of the line before the cursor."""
    line_suffix: str
    """Text of the line after the cursor."""


@dataclass(frozen=True)
class CompletionContext:
    """Everything post-processing and the engine need for one inline request."""

    path: str
    mode: Mode
    cursor: Cursor
    prefix: str
    """Document text before the cursor, cut to the budget at a line boundary, without ``healed``."""
    suffix: str
    """Document text after the cursor, cut to the budget at a line boundary."""
    prompt: str
    """The FIM prompt (repository layout when there are snippets)."""
    snippets: tuple[ContextFile, ...] = field(default=())
    healed: str = ""
    """The cursor line's indentation, left out of the prompt when nothing else precedes the cursor: the
    model then writes the line's indentation itself, as every line it saw in training starts (a prompt that
    ends in spaces makes it add another level); post-processing takes the indentation off again."""

    @property
    def indent(self) -> str:
        """Indentation of the cursor's line."""
        line = self.cursor.line_prefix
        return line[: len(line) - len(line.lstrip())]


def _units(ch: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(ch.encode("utf-8", errors="surrogatepass"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(ch) > 0xFFFF else 1


def utf16_to_index(line: str, character: int, encoding: str = "utf-16") -> int:
    """Python index in ``line`` of a code-unit offset (clamped to the line; never splits a character)."""
    if character <= 0:
        return 0
    units = 0
    for i, ch in enumerate(line):
        units += _units(ch, encoding)
        if units > character:
            return i
        if units == character:
            return i + 1
    return len(line)


def index_to_utf16(line: str, index: int, encoding: str = "utf-16") -> int:
    """Code-unit offset of Python index ``index`` in ``line``."""
    return sum(_units(ch, encoding) for ch in line[:index])


def resolve(text: str, line: int, character: int, encoding: str = "utf-16") -> Cursor:
    """Resolve an LSP position in ``text``; raises PositionError for a line outside the document."""
    if line < 0 or character < 0:
        raise PositionError(f"negative position ({line}, {character})", line)
    start = line_start(text, line)  # NOTE: the LSP's lines (\n, \r\n, \r), as the documents' (lsp/lines.py)
    if start is None:
        raise PositionError(f"line {line} is past the end of the document", line, len(split_lines(text)))
    row = text[start:line_end(text, start)]
    col = utf16_to_index(row, character, encoding)
    return Cursor(line=line, offset=start + col, line_prefix=row[:col], line_suffix=row[col:])


def choose_mode(cursor: Cursor) -> Mode:
    """Single line when there is code before the cursor on its line (unless it ends with a block opener
    and only closing brackets follow); a block on an empty or whitespace-only line."""
    before = cursor.line_prefix.rstrip()
    after = cursor.line_suffix.strip()
    if not before:
        return Mode.MULTI_LINE if not after else Mode.SINGLE_LINE
    if before.endswith(BLOCK_OPENERS) and all(c in ")]}" for c in after):
        return Mode.MULTI_LINE
    if before.endswith(LIST_OPENERS) and not after:
        return Mode.MULTI_LINE
    return Mode.SINGLE_LINE


def cut_prefix(text: str, budget: int) -> str:
    """The tail of ``text`` within ``budget`` chars, starting on a line that is a multiple of
    PREFIX_ALIGN_LINES (or at any line boundary if even one aligned block does not fit)."""
    if len(text) <= budget:
        return text
    lo = len(text) - budget  # the kept text starts at or after lo
    first = text.find("\n", lo - 1) + 1 if lo > 0 else 0
    if first <= 0 or first >= len(text):
        return text[-budget:]
    line_no = text.count("\n", 0, first)  # absolute number of the line starting at ``first``
    pos = first
    while pos < len(text):
        if line_no % PREFIX_ALIGN_LINES == 0:
            return text[pos:]
        nl = text.find("\n", pos)
        if nl < 0:
            break
        pos, line_no = nl + 1, line_no + 1
    return text[first:]


def cut_suffix(text: str, budget: int) -> str:
    """The head of ``text`` within ``budget`` chars, ending at a line boundary when possible."""
    if len(text) <= budget:
        return text
    head = text[:budget]
    nl = head.rfind("\n")
    return head[: nl + 1] if nl > 0 else head


def retrieval_query(text: str, cursor: Cursor) -> str:
    """QUERY_LINES complete lines above the cursor, the window ending on a QUERY_ALIGN_LINES boundary
    (or just above the cursor's line near the top of the file). Typing never changes it within a line."""
    end = cursor.line - cursor.line % QUERY_ALIGN_LINES or cursor.line
    lines = text[: cursor.offset].split("\n")
    return "\n".join(lines[max(0, end - QUERY_LINES) : end])


def build(
    path: str,
    text: str,
    line: int,
    character: int,
    *,
    others: Sequence[SourceFile] = (),
    retrieve: Retriever | None = None,
    budget_chars: int = 6000,
    snippet_budget_chars: int = 2000,
    repo_name: str | None = None,
    encoding: str = "utf-16",
    order: str = "psm",
) -> CompletionContext:
    """The completion context for a cursor in ``text``. Snippets come from ``retrieve`` or, without it,
    from ranking ``others`` (the current ``path`` left out)."""
    cursor = resolve(text, line, character, encoding)
    prefix = cut_prefix(text[: cursor.offset], int(budget_chars * PREFIX_SHARE))
    suffix = cut_suffix(text[cursor.offset :], budget_chars - int(budget_chars * PREFIX_SHARE))
    query = retrieval_query(text, cursor)
    if retrieve is None:
        def retrieve(q: str, budget: int) -> Sequence[Snippet]:
            return select(q, [o for o in others if o.path != path], budget)
    chosen = retrieve(query, snippet_budget_chars) if snippet_budget_chars > 0 else ()
    snippets = tuple(ContextFile(s.path, s.text) for s in chosen)
    healed = cursor.line_prefix if cursor.line_prefix and not cursor.line_prefix.strip() else ""
    if healed and prefix.endswith(healed):
        prefix = prefix[: len(prefix) - len(healed)]
    else:
        healed = ""
    prompt = fim_prompt(prefix, suffix, path=path, context=snippets, repo_name=repo_name if snippets else None,
                        order=order)
    return CompletionContext(path, choose_mode(cursor), cursor, prefix, suffix, prompt, snippets, healed)
