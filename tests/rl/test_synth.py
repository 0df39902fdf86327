"""Synthetic tasks: stdlib seeds, the fixed answer format, and the cleaning pipeline (sandbox + filters)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from rl.decontamination import EvalIndex, EvalItem
from rl.filters import FilterReport
from rl.synth import clean, evol_instruct, oss_instruct, parse_synth, stdlib_seeds

ANSWER = """Sure!
### Problem
Write a function `clamp_list(xs, lo, hi)` that clamps every number of a list into [lo, hi].
### Solution
```python
def clamp_list(xs, lo, hi):
    return [min(max(x, lo), hi) for x in xs]
```
### Tests
```python
assert clamp_list([1, 5, 9], 2, 8) == [2, 5, 8]
assert clamp_list([], 0, 1) == []
assert clamp_list([3], 3, 3) == [3]
```
"""


def answer(name: str, problem: str, body: str, asserts: list[str]) -> str:
    tests = "\n".join(asserts)
    return f"### Problem\n{problem}\n### Solution\n```python\ndef {name}(xs):\n    {body}\n```\n### Tests\n```python\n{tests}\n```\n"


HARDER = answer("running_max", "Return the running maximum of a list of numbers, or an empty list for empty input.",
                "import itertools; return list(itertools.accumulate(xs, max))",
                ["assert running_max([1, 3, 2]) == [1, 3, 3]", "assert running_max([]) == []"])
WRONG = answer("double_all", "Double every element of a list.", "return xs",
               ["assert double_all([1, 2]) == [2, 4]"])
LEAKED = answer("count_vowels_in_words", "Count the vowels of each word in a list of words and return the counts.",
                "return [sum(c in 'aeiou' for c in w) for w in xs]",
                ["assert count_vowels_in_words(['abc', 'ee']) == [1, 2]"])
SECRET = answer("tokenize_all", "Split every string of a list on whitespace.",
                'AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"; return [w.split() for w in xs]',
                ["assert tokenize_all(['a b']) == [['a', 'b']]"])


def test_stdlib_seeds_are_real_functions_and_reproducible():
    seeds = stdlib_seeds(3, seed=1)
    assert len(seeds) == 3 and seeds == stdlib_seeds(3, seed=1)
    assert all(s.code.startswith("def ") and ":" in s.origin for s in seeds)


def test_parse_synth_answer_format():
    task = parse_synth(ANSWER, "s/1", "oss:x")
    assert task.entry_point == "clamp_list" and len(task.tests) == 3
    assert "assert clamp_list([1, 5, 9]" in task.instruction
    assert parse_synth("no sections here", "s", "x") is None
    assert parse_synth(ANSWER.replace("def clamp_list(xs, lo, hi):", "def clamp_list(xs, lo, hi"), "s", "x") is None
    assert parse_synth(ANSWER.split("### Tests")[0], "s", "x") is None


class FakeEngine:
    """Answers every chat prompt with ``answers`` in turn (the real model's quality is measured elsewhere);
    refuses prompts containing "TOO LONG" like the engine refuses prompts over its context."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.tokenizer = SimpleNamespace(apply_chat_template=lambda msgs, **kw: msgs[0]["content"])
        self.prompts, self.adapter_key, self._queue = [], None, []

    def add_request(self, prompt, params, priority=None, adapter_id=None, request_id=None):
        if "TOO LONG" in prompt:
            raise ValueError("prompt too long")
        self.prompts.append(prompt)
        text = self.answers[(len(self.prompts) - 1) % len(self.answers)]
        sample = SimpleNamespace(text=text, token_ids=[1], finish_reason=None)
        self._queue.append(SimpleNamespace(request_id=request_id, finished=True, outputs=[sample]))
        return request_id

    def step(self):
        out, self._queue = self._queue, []
        return out

    def abort(self, request_id):
        pass


def test_oss_and_evol_instruct_and_clean():
    engine = FakeEngine([ANSWER, "garbage"])
    tasks = oss_instruct(engine, 2, seed=0)
    assert len(tasks) == 1 and "standard library" in engine.prompts[0]
    refused = replace(tasks[0], instruction="TOO LONG")
    assert evol_instruct(FakeEngine([ANSWER]), [refused], seed=0) == []
    evol_engine = FakeEngine([HARDER])
    harder = evol_instruct(evol_engine, tasks, seed=0)
    assert harder[0].task_id.endswith("/evol0") and "harder version" in evol_engine.prompts[0]
    wrong, contaminated = parse_synth(WRONG, "s/wrong", "oss"), parse_synth(LEAKED, "s/contaminated", "oss")
    dup, secret = parse_synth(ANSWER, "s/dup", "oss"), parse_synth(SECRET, "s/secret", "oss")
    report = FilterReport()
    index = EvalIndex([EvalItem("humaneval", "HumanEval/999", contaminated.instruction, contaminated.reference)])
    kept = clean([*tasks, *harder, wrong, contaminated, dup, secret], report, index=index)
    assert [t.task_id for t in kept] == [tasks[0].task_id, harder[0].task_id]
    assert report.dropped["near_duplicate"] == ["s/dup"]
    assert report.dropped["eval_ngram"] == ["s/contaminated"]
    assert report.dropped["reference_failed"] == ["s/wrong"]
    assert any(reason.startswith("scan:") for reason in report.dropped)
