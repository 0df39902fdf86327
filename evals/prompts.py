"""Prompts as the official harnesses build them, and code extraction from model output.

Chat (instruct models, EvalPlus / BigCodeBench style): the problem in a user turn, and the assistant turn
opened with a fixed response prefix that ends in a ```python fence; generation stops at the closing fence.
Completion (base models, human-eval style): the code prefix itself; the program is prefix + completion.
"""

from __future__ import annotations

import ast
import enum
import re
from dataclasses import dataclass

from evals.task import Task

INSTRUCTION_PREFIX = "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
RESPONSE_PREFIX = "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
CHAT_STOP = ["\n```"]
COMPLETION_STOP = ["\nif __name__", "\ndef main(", "\nprint(", "\n```", "\nassert "]


class PromptMode(str, enum.Enum):
    CHAT = "chat"
    COMPLETION = "completion"


@dataclass(frozen=True)
class Prompt:
    """What goes to the generator: the rendered text and the stop strings that end a sample."""

    text: str
    stop: tuple[str, ...]
    mode: PromptMode


def chat_messages(task: Task) -> list[dict[str, str]]:
    user = f"{INSTRUCTION_PREFIX}\n```\n{task.instruction.strip()}\n```\n"
    return [{"role": "user", "content": user}]


def build_prompt(task: Task, mode: PromptMode, tokenizer=None) -> Prompt:
    """Render ``task`` for ``mode``; chat mode needs a tokenizer with a chat template."""
    if mode is PromptMode.COMPLETION:
        return Prompt(task.prompt, tuple(COMPLETION_STOP), mode)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError("chat prompting needs a tokenizer with a chat template (use completion mode)")
    head = tokenizer.apply_chat_template(chat_messages(task), tokenize=False, add_generation_prompt=True)
    return Prompt(f"{head}{RESPONSE_PREFIX}\n```python\n", tuple(CHAT_STOP), mode)


_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:\n```|$)", re.S)


def extract_code(text: str, entry_point: str = "") -> str:
    """The code in a chat answer: the generated text up to a closing fence, or the fenced block that
    defines ``entry_point`` (else the first block, else the longest parseable text)."""
    if "```" not in text:
        return text.strip("\n")
    head = text.split("```", 1)[0]
    if head.strip() and _parses(head):  # answer began inside the prefix's open fence
        return head.strip("\n")
    blocks = _FENCE.findall(text)
    for block in blocks:
        if entry_point and re.search(rf"def\s+{re.escape(entry_point)}\s*\(", block):
            return block.strip("\n")
    return blocks[0].strip("\n") if blocks else ""


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def sanitize(code: str) -> str:
    """Keep only imports, definitions and assignments at top level (EvalPlus-style): example calls,
    prints, asserts and ``if __name__ == "__main__"`` blocks go. Unparseable code is returned as is."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    lines = code.splitlines(keepends=True)
    kept = [node for node in tree.body if isinstance(node, _KEEP)]
    if len(kept) == len(tree.body):
        return code
    parts = []
    for node in kept:
        start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        parts.append("".join(lines[start - 1 : node.end_lineno]))
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


def _prompt_imports(prompt: str) -> str:
    return "".join(ln + "\n" for ln in prompt.splitlines() if re.match(r"^(import |from \S+ import )", ln))


def assemble_program(task: Task, mode: PromptMode, output: str) -> str:
    """The program to run for one model output; empty when the output holds no code."""
    if mode is PromptMode.COMPLETION:
        return task.prompt + output if output.strip() else ""
    code = sanitize(extract_code(output, task.entry_point))
    if not code.strip():
        return ""
    if task.entry_point and not re.search(rf"def\s+{re.escape(task.entry_point)}\s*\(", code):
        # the answer is a body or helper only: complete the prompt's signature with it
        return task.prompt + code
    return _prompt_imports(task.prompt) + code
