"""Raw model text -> the suggestion shown in the editor. Pure and deterministic.

Most of the quality of inline completion lives here: the model does not know where to stop, repeats
itself, and re-types what already follows the cursor. ``finish`` returns the text to insert at the cursor
(possibly empty = no suggestion); ``should_stop`` tells a streaming caller it can abort the engine request
because more tokens would be cut anyway.
"""

from __future__ import annotations

import re

from lsp.context import CompletionContext, Mode

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}
MAX_BLANK_RUN = 2
"""A run of this many blank lines ends a block suggestion."""
MAX_REPEAT_PERIOD = 4
"""Repeated runs of up to this many lines are detected."""
_SPECIAL = re.compile(r"<\|[a-z_]+\|>|<fim_[a-z]+>|<file_sep>|</s>")


def finish(raw: str, ctx: CompletionContext, max_lines: int = 12) -> str:
    """The cleaned suggestion for ``raw`` model output, relative to the cursor of ``ctx``."""
    text = unheal(strip_special(raw), ctx)
    ended = rest = None
    if ctx.mode is Mode.SINGLE_LINE:
        line, newline, rest = text.partition("\n")
        text = trim_stutter(line)
        ended = text == line and bool(newline or _SPECIAL.search(raw))
    else:
        text, _ = block(text, ctx, max_lines)
    kept = text
    text = balance(text, ctx.cursor.line_prefix, ctx.cursor.line_suffix)
    text = trim_suffix_overlap(text, ctx.cursor.line_prefix, ctx.cursor.line_suffix)
    text = text.rstrip()
    if ended and text == kept.rstrip():
        text = close_line(text, ctx, rest or "")
    return text if text.strip() else ""


LINE_END_CHARS = ")]}'\"_"
"""Besides letters and digits, the characters a finished expression can end with."""


def close_line(line: str, ctx: CompletionContext, rest: str = "") -> str:
    """``line`` plus the closers of the brackets that the cursor's line leaves open, when the model ended
    the line there (``rest`` is what it wrote after the newline) and nothing closes them later.

    A small model finishing ``return [n for n in range(limit) if `` often writes ``is_prime(n)`` and a
    newline: the ``]`` it left out would make the accepted line a syntax error. The brackets are closed
    only when the cursor is at the end of its line, the line ends like a finished expression (not in an
    opener, a comma or an operator), and the next code line (the model's, else the document's) neither
    starts with a closer nor is indented deeper than the cursor's line (a continuation)."""
    full = ctx.cursor.line_prefix + line
    if not line.strip() or ctx.cursor.line_suffix.strip():
        return line
    stack = open_stack(full)
    end = full.rstrip()[-1:]
    if not stack or not (end.isalnum() or end in LINE_END_CHARS):
        return line
    after = _first_code_line_raw(rest) or _first_code_line_raw(ctx.suffix.partition("\n")[2])
    if after and (after.lstrip()[0] in CLOSERS or _indent(after) > _indent(ctx.cursor.line_prefix)):
        return line
    return line.rstrip() + "".join(OPENERS[c] for c in reversed(stack))


def _first_code_line_raw(text: str) -> str:
    """The first non-blank line of ``text``, indentation kept ("" when none)."""
    return next((ln for ln in text.split("\n") if ln.strip()), "")


def should_stop(raw: str, ctx: CompletionContext, max_lines: int = 12) -> bool:
    """True when no later token could change ``finish(raw, ...)``: the engine request may be aborted."""
    if _SPECIAL.search(raw):
        return True
    text = unheal(raw, ctx)
    if ctx.mode is Mode.SINGLE_LINE:
        return "\n" in text
    complete = text[: text.rfind("\n") + 1] if "\n" in text else ""
    _, stopped = block(complete, ctx, max_lines)
    return stopped


_STUTTER = re.compile(r"(.{1,12}?)\1{5,}$")


def trim_stutter(line: str) -> str:
    """Cut a line that ends in a short piece repeated 6+ times, as a model stuck until max_tokens does
    (``x = % % % % % %`` -> ``x = %``); repeats inside the line (``"========"``) are left alone."""
    match = _STUTTER.search(line)
    if match is None or not match.group(1).strip():
        return line
    return line[: match.start() + len(match.group(1))].rstrip()


def unheal(text: str, ctx: CompletionContext) -> str:
    """The model's text relative to the cursor, when the prompt left the cursor line's indentation out
    (``ctx.healed``): the first line's indentation comes off, and when the model indented that line, but
    differently from the cursor, the following lines move by the difference so the block stays consistent
    where the editor inserts it."""
    first = text.split("\n", 1)[0]
    if not ctx.healed or not first.strip():
        return text
    written = len(first) - len(first.lstrip(" \t"))
    shift = _indent(ctx.healed) - _indent(first[:written])
    lines = text.split("\n")
    lines[0] = first[written:]
    if written and shift and "\t" not in text:  # NOTE: an unindented first line reads as typed at the cursor
        lines[1:] = [_shifted(line, shift) for line in lines[1:]]
    return "\n".join(lines)


def _shifted(line: str, shift: int) -> str:
    if not line.strip():
        return line
    if shift > 0:
        return " " * shift + line
    return line[min(-shift, len(line) - len(line.lstrip(" "))):]


def strip_special(text: str) -> str:
    """Cut at the first special token (end of text, file separator, FIM markers)."""
    match = _SPECIAL.search(text)
    return text[: match.start()] if match else text


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def block(text: str, ctx: CompletionContext, max_lines: int) -> tuple[str, bool]:
    """Cut a multi-line suggestion at dedent, a blank-line run, repetition, the suffix, or max_lines.

    Returns the kept text and whether a stop condition was met inside ``text``.
    """
    lines = text.split("\n")
    after_opener = bool(ctx.cursor.line_prefix.strip())
    base = _indent(ctx.cursor.line_prefix)
    if not after_opener:
        base += _indent(lines[0])
    next_code = _first_code_line(ctx.suffix)
    kept: list[str] = []
    blanks = 0
    for i, line in enumerate(lines):
        if i > 0 and line.strip():
            ind = _indent(line)
            if (ind <= base if after_opener else ind < base):
                if after_opener and _only_closers(line) and line.strip() != next_code:
                    kept.append(line)
                return _join(kept), True
            if next_code and len(next_code) > 3 and line.strip() == next_code:
                return _join(kept), True
        # the last piece is the line being written (empty after a final newline): not a blank line yet
        blanks = blanks + 1 if (0 < i < len(lines) - 1 and not line.strip()) else 0
        if blanks >= MAX_BLANK_RUN:
            return _join(kept), True
        kept.append(line)
        if _repeats(kept):
            return _join(_drop_repeat(kept)), True
        if sum(1 for k in kept if k.strip()) >= max_lines and i < len(lines) - 1:
            return _join(kept), True
    return _join(kept), False


def _join(lines: list[str]) -> str:
    return "\n".join(lines).rstrip()


def _first_code_line(suffix: str) -> str:
    for line in suffix.split("\n")[1:]:
        if line.strip():
            return line.strip()
    return ""


def _only_closers(line: str) -> bool:
    body = line.strip().rstrip(";,")
    return bool(body) and all(c in ")]}" for c in body) or body in ("end", "fi", "done", "esac")


def _repeats(lines: list[str]) -> int:
    """Length of the run of code lines that ends ``lines`` and repeats the run just before it (0: none)."""
    code = [ln.strip() for ln in lines if ln.strip()]
    for period in range(1, MAX_REPEAT_PERIOD + 1):
        if len(code) >= 2 * period and code[-period:] == code[-2 * period : -period]:
            if period > 1 or len(code[-1]) > 2:
                return period
    return 0


def _drop_repeat(lines: list[str]) -> list[str]:
    """``lines`` without the repeated run at its end."""
    out = list(lines)
    to_drop = _repeats(out)
    while out and to_drop:
        if out.pop().strip():
            to_drop -= 1
    while out and not out[-1].strip():
        out.pop()
    return out


def open_stack(text: str) -> list[str]:
    """Openers left unclosed in ``text`` (strings and comments are not understood: a heuristic)."""
    stack: list[str] = []
    for ch in text:
        if ch in OPENERS:
            stack.append(ch)
        elif ch in CLOSERS and stack and stack[-1] == CLOSERS[ch]:
            stack.pop()
    return stack


def balance(text: str, line_prefix: str, line_suffix: str) -> str:
    """Cut ``text`` before a closer that does not match, or that closes a bracket of the line prefix
    which the line suffix already closes."""
    seeded = open_stack(line_prefix)
    suffix_closers = [c for c in line_suffix if c in CLOSERS]
    own: list[str] = []
    for i, ch in enumerate(text):
        if ch in OPENERS:
            own.append(ch)
        elif ch in CLOSERS:
            if own:
                if own[-1] != CLOSERS[ch]:
                    return text[:i]
                own.pop()
            elif seeded:
                if seeded[-1] != CLOSERS[ch] or ch in suffix_closers:
                    return text[:i]
                seeded.pop()
            elif ch in suffix_closers and "\n" not in text[:i]:
                return text[:i]
    return text


def _unbalanced(text: str) -> int:
    """Unmatched closers plus unclosed openers in ``text``."""
    stack: list[str] = []
    bad = 0
    for ch in text:
        if ch in OPENERS:
            stack.append(ch)
        elif ch in CLOSERS:
            if stack and stack[-1] == CLOSERS[ch]:
                stack.pop()
            else:
                bad += 1
    return bad + len(stack)


def trim_suffix_overlap(text: str, line_prefix: str, line_suffix: str) -> str:
    """Drop the end of ``text`` that re-types what already follows the cursor on its line.

    A tail is dropped only when the line's brackets end up no less balanced than with it.
    """
    tail = line_suffix.strip()
    body = text.rstrip()
    if not tail or not body or "\n" in body:
        return text
    last = body.split("\n")[-1]
    before = _unbalanced(line_prefix + last + line_suffix)
    for k in range(min(len(tail), len(body)), 0, -1):
        if not body.endswith(tail[:k]):
            continue
        after = _unbalanced(line_prefix + last[:-k] + line_suffix)
        brackety = any(c in OPENERS or c in CLOSERS for c in tail[:k])
        if after < before or (after == before and not brackety and k == len(tail)):
            return body[:-k]
    return text
