from evals import datasets
from evals.prompts import RESPONSE_PREFIX, PromptMode, assemble_program, build_prompt, extract_code, sanitize


class ChatTok:
    chat_template = "chatml"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


HE0 = datasets.load("humaneval")[0]


def test_chat_prompt_is_evalplus_style():
    p = build_prompt(HE0, PromptMode.CHAT, ChatTok())
    assert "def has_close_elements" in p.text and "```\n" in p.text
    assert p.text.endswith(f"{RESPONSE_PREFIX}\n```python\n") and p.stop == ("\n```",)


def test_completion_prompt_is_the_code_prefix():
    p = build_prompt(HE0, PromptMode.COMPLETION)
    assert p.text == HE0.prompt and "\nif __name__" in p.stop


def test_extract_code_variants():
    assert extract_code("def f():\n    return 1\n") == "def f():\n    return 1"
    text = "Here you go:\n```python\ndef g(): pass\n```\nand\n```python\ndef f(x):\n    return x\n```\n"
    assert extract_code(text, "f") == "def f(x):\n    return x"
    assert extract_code(text, "h") == "def g(): pass"
    assert extract_code("def f(x):\n    return x\n```\nExplanation...") == "def f(x):\n    return x"
    assert extract_code("I cannot help with that. ```") == ""


def test_sanitize_drops_examples_and_main():
    code = "import math\n\n@cache\ndef f(x):\n    return x\n\nprint(f(2))\nassert f(1) == 1\nif __name__ == '__main__':\n    f(3)\n"
    out = sanitize(code)
    assert "@cache\ndef f(x)" in out and "import math" in out
    assert "print(" not in out and "assert" not in out and "__main__" not in out


def test_assemble_program():
    full = "def has_close_elements(numbers, threshold):\n    return False\n"
    prog = assemble_program(HE0, PromptMode.CHAT, full + "```")
    assert prog.startswith("from typing import List\n") and full.strip() in prog
    body = "    return False\n"
    assert assemble_program(HE0, PromptMode.CHAT, body) == HE0.prompt + "    return False"
    assert assemble_program(HE0, PromptMode.COMPLETION, body) == HE0.prompt + body
    assert assemble_program(HE0, PromptMode.CHAT, "Sorry, no.\n```") == ""
    assert assemble_program(HE0, PromptMode.COMPLETION, "  \n") == ""
