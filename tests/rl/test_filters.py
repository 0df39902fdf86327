"""Near-duplicate removal and decontamination keep what they should and say what they dropped."""

from __future__ import annotations

from rl.filters import Decontaminator, FilterReport, dedup

A = "def add(a, b):\n    '''Add two numbers and return the sum of both values.'''\n    return a + b\n"
A_RENAMED_SPACING = "def add(a,b):\n  '''Add two numbers and return the sum of both values.'''\n  return a+b\n"
B = "def fizzbuzz(n):\n    return ['Fizz' * (i % 3 == 0) + 'Buzz' * (i % 5 == 0) or str(i) for i in range(1, n)]\n"


def test_dedup_drops_near_duplicates_only():
    items = [("a", A), ("a2", A_RENAMED_SPACING), ("b", B)]
    report = FilterReport()
    kept = dedup(items, text=lambda x: x[1], ident=lambda x: x[0], report=report)
    assert [k for k, _ in kept] == ["a", "b"]
    assert report.dropped == {"near_duplicate": ["a2"]}


def test_decontamination_catches_shared_long_ngrams():
    eval_item = "Write a function to find the shared elements from the given two lists and return them sorted."
    deco = Decontaminator([eval_item], n=8)
    leaked = "# Task: write a function to find the shared elements from the given two lists\ndef f(): pass"
    clean = "# Task: write a function that reverses the words of a sentence\ndef g(): pass"
    assert deco.contaminated(leaked)
    assert not deco.contaminated(clean)
    report = FilterReport()
    kept = deco.filter([("x", leaked), ("y", clean)], lambda t: t[1], lambda t: t[0], report)
    assert kept == [("y", clean)] and report.as_dict()["dropped"] == {"eval_overlap": 1}
