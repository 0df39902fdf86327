"""What the completer takes and gives: a document snapshot, the suggestion shown at a cursor, and the
engine path's full record of one completion (context, raw text, checks) for evals and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

from lsp import context as ctxmod
from lsp.checks.note import CheckNote


@dataclass(frozen=True)
class Document:
    """A snapshot of one document at one version."""

    uri: str
    path: str
    text: str
    version: int = 0
    encoding: str = "utf-16"
    """Position encoding of the client's positions (utf-16, utf-8 or utf-32)."""


@dataclass(frozen=True)
class Suggestion:
    """Text to insert at the cursor (line, character in UTF-16) whose line starts with ``line_prefix``."""

    text: str
    line: int
    character: int
    line_prefix: str
    source: str
    """"engine", "cache" or "typed_through"."""
    mode: ctxmod.Mode = ctxmod.Mode.SINGLE_LINE
    warnings: tuple[str, ...] = ()
    """Security notes (``security.*: warn``) shown with the completion item."""
    check: CheckNote | None = None
    """What was checked (a block suggestion in a function with checks), else None."""
    adapter: str | None = None
    """The per-repository adapter the engine ran (None: the base model, or not known for cache hits)."""
    accept_id: str | None = None
    """Acceptance telemetry on: the id the item's accept command reports (lsp/acceptance.py)."""

    @property
    def replace_from(self) -> int:
        """UTF-16 column where the replaced range starts: the line start when only indentation precedes
        the cursor (editors drop an item whose range covers text that is not a prefix of its text)."""
        return 0 if not self.line_prefix.strip() else self.character

    @property
    def insert_text(self) -> str:
        return (self.line_prefix if self.replace_from == 0 else "") + self.text


@dataclass(frozen=True)
class Completion:
    """What the engine path made of one cursor: the context it built, the raw model text, the suggestion."""

    context: ctxmod.CompletionContext
    raw: str
    text: str
    """The suggestion ("" = none shown); checked: the final choice."""
    check: CheckNote | None = None
    """Checked completions only: what was checked (the final note)."""
    shown: str = ""
    """Checked completions only: the text shown at the deadline (before a late result replaced it)."""
    shown_ms: float = 0.0
    """Checked completions only: from the call to the moment ``shown`` was chosen (what the editor waits)."""
    generation_ms: float = 0.0
    """Checked completions only: from the call to the end of generation (the rest of ``shown_ms`` is what
    the checks added after the last candidate)."""
