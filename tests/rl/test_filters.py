"""Near-duplicate removal keeps what it should and says what it dropped (decontamination: test_decontamination)."""

from __future__ import annotations

from rl.filters import FilterReport, dedup

A = "def add(a, b):\n    '''Add two numbers and return the sum of both values.'''\n    return a + b\n"
A_RENAMED_SPACING = "def add(a,b):\n  '''Add two numbers and return the sum of both values.'''\n  return a+b\n"
B = "def fizzbuzz(n):\n    return ['Fizz' * (i % 3 == 0) + 'Buzz' * (i % 5 == 0) or str(i) for i in range(1, n)]\n"


def test_dedup_drops_near_duplicates_only():
    items = [("a", A), ("a2", A_RENAMED_SPACING), ("b", B)]
    report = FilterReport()
    kept = dedup(items, text=lambda x: x[1], ident=lambda x: x[0], report=report)
    assert [k for k, _ in kept] == ["a", "b"]
    assert report.dropped == {"near_duplicate": ["a2"]}
