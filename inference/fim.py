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
FIM_ORDERS = ("psm", "spm")
"""Layouts of the current file (Bavarian et al. 2022): "psm" prefix, suffix, then the middle is written;
"spm" the suffix first, then the prefix, which the middle continues (StarCoder's variant:
``<|fim_prefix|><|fim_suffix|>suffix<|fim_middle|>prefix``). Under "spm" a keystroke changes only the
prompt's end, so everything before the cursor's block stays in the prefix cache; under "psm" everything
after the cursor (the suffix) is computed again on every keystroke."""


def ends_at_cursor(order: str) -> bool:
    """Whether a prompt laid out in ``order`` ends where the user types (spm): it usually ends inside a word,
    so its requests ask for token healing (``SamplingParams.heal``)."""
    return order == "spm"


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
    order: str = "psm",
) -> str:
    """Build a FIM prompt; with ``context`` or ``repo_name`` use the repository-level layout. ``order`` (see
    FIM_ORDERS) places the code after the cursor before or after the code above it."""
    if order == "spm":
        body = f"{FIM_PREFIX}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}{prefix}"
    elif order == "psm":
        body = f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"
    else:
        raise ValueError(f"FIM order must be one of {FIM_ORDERS}, got {order!r}")
    if not context and repo_name is None:
        return body
    return "".join(context_header(context, repo_name)) + current_file_header(path) + body


def context_header(context: list[ContextFile] | tuple[ContextFile, ...], repo_name: str | None) -> list[str]:
    """The repository-level lines before the current file: the repository name, then one item per file.

    Each item starts with a special token, so the items can be tokenized one by one (and dropped whole
    to fit a budget) with the same ids as the joined text.
    """
    return [f"{REPO_NAME}{repo_name or 'workspace'}\n",
            *(f"{FILE_SEP}{item.path}\n{item.text.rstrip()}\n" for item in context)]


def current_file_header(path: str | None) -> str:
    return f"{FILE_SEP}{path or 'current'}\n"
