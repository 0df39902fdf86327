"""llama.vscode's inline completion: the ``/infill`` request it sends and what it shows of the reply.

Modelled on ggml-org/llama.vscode at commit 3938fb3568b98e3ddfcf2ce3dd52d9570552b579 (v0.0.63):
``src/completion.ts`` (``getCompletionItems``, ``shouldDiscardSuggestion``, ``updateSuggestion``,
``removeLeadingSpaces``, ``getComplFromContent``), ``src/llama-server.ts`` (``createRequestPayload``),
``src/utils.ts`` (``getPrefixLines``, ``getSuffixLines``, ``removeTrailingNewLines``) and the setting
defaults of ``package.json``. Our own code, written from reading theirs.

Two halves cut what a user sees. On the server (``llama-server``, from the request): ``n_indent`` = the
cursor line's indentation stops generation at the first new line indented less, and ``t_max_predict_ms``
stops it at the first new line once that many milliseconds of generation have passed (so how much of a
multi-line reply survives depends on the machine's speed). On the client (``shown``): trailing blank lines
dropped; a reply that only repeats the document discarded; with text right of the cursor only the first
line kept (minus that text); the line's indentation, which the prompt left out, taken off the front.

Not modelled (an eval asks once per cursor): the result cache and its speculative next requests, the
ring buffer of chunks from recently opened files (the caller supplies ``input_extra``), debounce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lsp.lines import LINE_BREAK

N_PREFIX_LINES = 256
N_SUFFIX_LINES = 64
N_PREDICT = 128
T_MAX_PROMPT_MS = 500
T_MAX_PREDICT_MS = 500
"""package.json's default (configuration.ts starts at 2500 but reads the setting, whose default is 500)."""
MAX_LINE_SUFFIX = 8
"""No automatic request when more characters than this stand right of the cursor."""
SAMPLERS = ("top_k", "top_p", "infill")
SEED = 0
"""Not sent by llama.vscode (the server then seeds at random); fixed here so a run can be repeated. The
sampler chain has no temperature stage, so the reply is sampled (top-k 40, top-p 0.99, infill) either way."""

_REPLY_EOL = re.compile(r"\r?\n")
"""llama.vscode splits a reply on these."""


@dataclass(frozen=True)
class VscodeSettings:
    """The llama.vscode settings an eval varies (the rest are its defaults above)."""

    t_max_predict_ms: int = T_MAX_PREDICT_MS
    """0: no time limit (the reply then does not depend on the machine's speed)."""
    n_predict: int = N_PREDICT
    max_parallel_completions: int = 1
    """``n_cmpl``: llama.vscode's default is 3, which a server started with ``-np 1`` refuses (the limit is
    its slot count); 1 is what a user of such a server must set."""


@dataclass(frozen=True)
class Cursor:
    """The document as VS Code holds it (lines without their line breaks) and the cursor in it."""

    lines: tuple[str, ...]
    line: int
    character: int

    @classmethod
    def at(cls, text: str, offset: int) -> Cursor:
        before = LINE_BREAK.split(text[:offset])  # the LSP's lines, which are VS Code's
        return cls(tuple(LINE_BREAK.split(text)), len(before) - 1, len(before[-1]))

    @property
    def line_prefix(self) -> str:
        return self.lines[self.line][: self.character]

    @property
    def line_suffix(self) -> str:
        return self.lines[self.line][self.character:]

    def line_at(self, index: int) -> str:
        """``document.lineAt(index).text``; like VS Code's, raises on a line that is not there."""
        if not 0 <= index < len(self.lines):
            raise IndexError(f"line {index} of {len(self.lines)}")
        return self.lines[index]


@dataclass(frozen=True)
class InfillRequest:
    body: dict[str, Any]
    cursor: Cursor
    spaces_to_remove: int
    """The cursor line's text before the cursor when it is only spaces and tabs (then ``prompt`` is "")."""


def auto_trigger_refused(cursor: Cursor) -> bool:
    """llama.vscode sends no automatic request with more than MAX_LINE_SUFFIX characters right of the cursor."""
    return len(cursor.line_suffix) > MAX_LINE_SUFFIX


def infill_request(cursor: Cursor, chunks: list[dict[str, str]], settings: VscodeSettings = VscodeSettings()
                   ) -> InfillRequest:
    """The body llama.vscode POSTs to ``/infill`` for ``cursor``; ``chunks``: ``input_extra``
    (``{"filename", "text"}``)."""
    line_text, line_prefix = cursor.lines[cursor.line], cursor.line_prefix
    n_indent = len(line_text) - len(line_text.lstrip())
    above = cursor.lines[max(0, cursor.line - N_PREFIX_LINES): cursor.line]
    below = cursor.lines[cursor.line + 1: min(len(cursor.lines) - 1, cursor.line + N_SUFFIX_LINES) + 1]
    prompt, spaces_to_remove = line_prefix, 0
    if re.fullmatch(r"[ \t]*", line_prefix):
        prompt, spaces_to_remove = "", len(line_prefix)
    body: dict[str, Any] = {
        "id_slot": 0, "input_prefix": "\n".join(above) + "\n",
        "input_suffix": cursor.line_suffix + "\n" + "\n".join(below) + "\n", "input_extra": chunks,
        "prompt": prompt, "n_predict": settings.n_predict, "n_cmpl": settings.max_parallel_completions,
        "top_k": 40, "top_p": 0.99, "stream": False, "samplers": list(SAMPLERS), "cache_prompt": True,
        "t_max_prompt_ms": T_MAX_PROMPT_MS, "t_max_predict_ms": settings.t_max_predict_ms, "seed": SEED,
    }
    if n_indent:
        body["n_indent"] = n_indent
    return InfillRequest(body, cursor, spaces_to_remove)


def completions_of(reply: Any) -> list[str]:
    """The candidates of a ``/infill`` reply (one object, or a list of them for ``n_cmpl`` > 1; repeats
    dropped, order kept)."""
    if isinstance(reply, dict):
        return [reply.get("content") or ""]
    return list(dict.fromkeys((r.get("content") or "") for r in reply))


def remove_trailing_blank_lines(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def should_discard(lines: list[str], cursor: Cursor) -> bool:
    """True when the suggestion is empty or only repeats text the document already has."""
    if not lines or (len(lines) == 1 and not lines[0].strip()):
        return True
    if cursor.line == len(cursor.lines) - 1:
        return False
    suffix = cursor.line_suffix
    if (len(lines) > 1 and (not lines[0].strip() or lines[0].strip() == suffix.strip())
            and _repeats(lines[1:], cursor, cursor.line + 1)):
        return True  # the lines after the first are the document's next lines
    if len(lines) == 1 and lines[0] == suffix:
        return True
    row = cursor.line + 1
    while row < len(cursor.lines) and not cursor.lines[row].strip():
        row += 1
    if row >= len(cursor.lines):
        return False
    if cursor.line_prefix + lines[0] != cursor.lines[row]:
        return False
    if len(lines) == 1:
        return True  # it repeats the next non-empty line
    if len(lines) == 2:
        return lines[1] == cursor.line_at(row + 1)[: len(lines[1])]
    return _repeats(lines[1:], cursor, row + 1)


def _repeats(lines: list[str], cursor: Cursor, row: int) -> bool:
    """JavaScript's ``lines.every((v, i) => v === document.lineAt(row + i).text)``: stops at the first
    difference, raises IndexError on a line past the document's end."""
    return all(text == cursor.line_at(row + i) for i, text in enumerate(lines))


def update_suggestion(lines: list[str], line_suffix: str) -> str:
    """With text right of the cursor, only the first line is kept (minus that text when it ends with it)."""
    if line_suffix.strip():
        if lines[0].endswith(line_suffix):
            return lines[0][: -len(line_suffix)]
        if len(lines) > 1:
            return lines[0]
    return "\n".join(lines)


def remove_leading_spaces(text: str, n: int) -> str:
    """Up to ``n`` leading spaces off; as in llama.vscode (``a && b && c || d`` binds as ``(a && b && c) || d``),
    leading tabs go whatever ``n`` says."""
    i = 0
    while (i < len(text) and i < n and text[i] == " ") or (i < len(text) and text[i] == "\t"):
        i += 1
    return text[i:]


@dataclass(frozen=True)
class Shown:
    text: str
    """The ghost text (inserted on Tab); "" when nothing is shown."""
    discarded: int
    """Candidates dropped by ``should_discard``."""
    error: str = ""
    """Set when llama.vscode would fail on this reply (``lineAt`` past the end): it then shows nothing."""


def shown(reply: Any, req: InfillRequest) -> Shown:
    """What llama.vscode shows for ``reply`` to ``req``: the first candidate that is not discarded."""
    kept, discarded = [], 0
    try:
        for content in completions_of(reply):
            lines = remove_trailing_blank_lines(_REPLY_EOL.split(content))
            if should_discard(lines, req.cursor):
                discarded += 1
                continue
            kept.append(update_suggestion(lines, req.cursor.line_suffix))
    except IndexError as exc:
        return Shown("", discarded, f"lineAt: {exc}")
    text = remove_leading_spaces(kept[0], req.spaces_to_remove) if kept else ""
    return Shown(text, discarded)
