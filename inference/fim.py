"""Fill-in-the-middle prompt layout (Qwen2.5-Coder / StarCoder token convention).

Repository-level layout: context files first (stable order so consecutive prompts share a long prefix in
the engine's prefix cache), the current file last, split around the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass

FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_PAD = "<|fim_pad|>"
FILE_SEP = "<|file_sep|>"
REPO_NAME = "<|repo_name|>"
END_OF_TEXT = "<|endoftext|>"


@dataclass(frozen=True)
class ContextFile:
    """Another file (or a snippet of one) shown to the model before the current file."""

    path: str
    text: str


def fim_prompt(
    prefix: str,
    suffix: str,
    *,
    path: str | None = None,
    context: list[ContextFile] | tuple[ContextFile, ...] = (),
    repo_name: str | None = None,
) -> str:
    """Build a FIM prompt; with ``context`` or ``repo_name`` use the repository-level layout."""
    body = f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"
    if not context and repo_name is None:
        return body
    parts = [f"{REPO_NAME}{repo_name or 'workspace'}\n"]
    for item in context:
        parts.append(f"{FILE_SEP}{item.path}\n{item.text.rstrip()}\n")
    parts.append(f"{FILE_SEP}{path or 'current'}\n{body}")
    return "".join(parts)
