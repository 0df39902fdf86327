"""Test-log parsers, one per ``log_parser`` name, reproducing swebench 4.1.0's python parsers.

Each maps captured output to ``{test_name: status}`` with status in PASSED, FAILED, SKIPPED, ERROR, XFAIL.
Lines are split on "\\n" only, and a status is recognised by ``startswith`` exactly as upstream does.
"""

from __future__ import annotations

import re
from collections.abc import Callable

STATUSES = ("FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL")
_OPTION = re.compile(r"(.*?)\[(.*)\]")
_ESCAPES = str.maketrans("", "", "".join(chr(c) for c in range(1, 32)))


def _status_line(line: str) -> list[str] | None:
    """``[status, test, ...]`` for a line that starts with a status word, else None."""
    if not line.startswith(STATUSES):
        return None
    if line.startswith("FAILED"):
        line = line.replace(" - ", " ")
    parts = line.split()
    return parts if len(parts) > 1 else None


def parse_pytest(log: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in log.split("\n"):
        parts = _status_line(line)
        if parts:
            out[parts[1]] = parts[0]
    return out


def parse_pytest_options(log: str) -> dict[str, str]:
    """Like pytest; a parametrized id whose parameter is a path keeps only ``[/last_component]``."""
    out: dict[str, str] = {}
    for line in log.split("\n"):
        parts = _status_line(line)
        if not parts:
            continue
        name = parts[1]
        m = _OPTION.search(name)
        if m:
            main, option = m.groups()
            if option.startswith("/") and not option.startswith("//") and "*" not in option:
                option = "/" + option.split("/")[-1]
            name = f"{main}[{option}]"
        out[name] = parts[0]
    return out


def parse_pytest_v2(log: str) -> dict[str, str]:
    """pytest with colour codes and control characters removed; ``test STATUS`` lines count too."""
    out: dict[str, str] = {}
    for raw in log.split("\n"):
        line = re.sub(r"\[(\d+)m", "", raw).translate(_ESCAPES)
        parts = _status_line(line)
        if parts:
            out[parts[1]] = parts[0]
        elif line.startswith(STATUSES):
            continue
        elif line.endswith(STATUSES):
            words = line.split()
            if len(words) >= 2:
                out[words[0]] = words[1]
    return out


def parse_seaborn(log: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in log.split("\n"):
        parts = line.split()
        if len(parts) < 2:  # upstream would raise IndexError here; such lines carry no result
            continue
        if line.startswith("FAILED"):
            out[parts[1]] = "FAILED"
        elif " PASSED " in line:
            if parts[1] == "PASSED":
                out[parts[0]] = "PASSED"
        elif line.startswith("PASSED"):
            out[parts[1]] = "PASSED"
    return out


def parse_sympy(log: str) -> dict[str, str]:
    """sympy's ``bin/test``: ``___ path.py:test ___`` headers are failures; ``test_x ok|F|E`` lines."""
    out: dict[str, str] = {}
    for m in re.findall(r"(_*) (.*)\.py:(.*) (_*)", log):
        out[f"{m[1]}.py:{m[2]}"] = "FAILED"
    for line in log.split("\n"):
        line = line.strip()
        if line.startswith("test_"):
            if line.endswith(" E"):
                out[line.split()[0]] = "ERROR"
            if line.endswith(" F"):
                out[line.split()[0]] = "FAILED"
            if line.endswith(" ok"):
                out[line.split()[0]] = "PASSED"
    return out


PARSERS: dict[str, Callable[[str], dict[str, str]]] = {
    "pytest": parse_pytest,
    "pytest_options": parse_pytest_options,
    "pytest_v2": parse_pytest_v2,
    "seaborn": parse_seaborn,
    "sympy": parse_sympy,
}


def parse_log(name: str, log: str) -> dict[str, str]:
    if name not in PARSERS:
        raise ValueError(f"unknown SWE-bench log parser {name!r}; known: {sorted(PARSERS)}")
    return PARSERS[name](log)
