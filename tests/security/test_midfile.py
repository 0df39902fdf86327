"""A buffer broken mid-file (the line being typed) is still scanned, with line numbers intact."""

from __future__ import annotations

from security import scan

BROKEN = '''import subprocess


def primes_below(limit: int) -> list[int]:
    return [n for n in range(limit) if


def run(cmd: str) -> int:
    return subprocess.call("sh -c " + cmd, shell=True)
'''


def test_findings_below_a_line_being_typed():
    findings = [f for f in scan(BROKEN) if f.kind.value == "risky"]
    assert findings, "the shell=True call below the broken line must be found"
    assert {f.start_line for f in findings} == {8}
