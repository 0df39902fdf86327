"""A user's own benchmark: a JSONL file whose records follow HumanEval's, MBPP's or BigCodeBench's format.

The format of each record is told by its fields, and every record becomes the same ``Task`` the built-in
loaders make (same runner, sandbox, pass@k and reports):

| format       | recognised by                                          | required fields                          |
|--------------|--------------------------------------------------------|------------------------------------------|
| HumanEval    | ``test`` defines ``check(candidate)``                   | task_id, prompt, entry_point, test       |
| MBPP         | ``test_list`` (assert lines)                            | task_id, text or prompt, test_list       |
| BigCodeBench | ``test`` defines ``class TestCases`` (unittest), or ``complete_prompt`` | task_id, complete_prompt or prompt, entry_point, test |

Optional: ``canonical_solution`` (HumanEval / BigCodeBench: the body after the prompt; MBPP: ``code``),
``libs`` (BigCodeBench), ``instruct_prompt`` (BigCodeBench), ``test_setup_code`` (MBPP). A bad record stops
the load with an error naming the file, line and task id, and what is wrong.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from evals.datasets.bigcodebench import task_libs
from evals.datasets.files import DatasetError, read_jsonl
from evals.datasets.mbpp import entry_point_of, mbpp_prompt
from evals.datasets.programs import check_call, unittest_call
from evals.task import Task

BENCHMARK = "custom"
FORMATS = ("humaneval", "mbpp", "bigcodebench")


def detect_format(row: dict) -> str | None:
    """Which record format ``row`` follows (None: none of them)."""
    if "test_list" in row:
        return "mbpp"
    test = row.get("test")
    if not isinstance(test, str):
        return None
    if "complete_prompt" in row or re.search(r"^\s*class\s+TestCases\b", test, flags=re.M):
        return "bigcodebench"
    if re.search(r"^\s*def\s+check\s*\(", test, flags=re.M):
        return "humaneval"
    return None


def load_custom(path: Path) -> list[Task]:
    """Every record of ``path`` as a Task; raises ``DatasetError`` naming the first bad record."""
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, row in enumerate(read_jsonl(path), 1):
        where = f"{path}: record {number}"
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: not a JSON object")
        task_id = row.get("task_id")
        if not isinstance(task_id, (str, int)) or str(task_id) == "":
            raise DatasetError(f"{where}: missing 'task_id'")
        where += f" (task_id {task_id!r})"
        if str(task_id) in seen:
            raise DatasetError(f"{where}: task_id appears twice")
        seen.add(str(task_id))
        fmt = detect_format(row)
        if fmt is None:
            raise DatasetError(f"{where}: not a HumanEval (test defining check(candidate)), MBPP (test_list) "
                               "or BigCodeBench (test defining class TestCases) record")
        try:
            tasks.append(_BUILDERS[fmt](str(task_id), row))
        except (KeyError, TypeError, ValueError, SyntaxError) as exc:
            raise DatasetError(f"{where}, {fmt} format: {_reason(exc)}") from None
    if not tasks:
        raise DatasetError(f"{path}: no records")
    return tasks


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _text(row: dict, *names: str) -> str:
    """The first of ``names`` present in ``row``, which must be a non-empty string."""
    for name in names:
        if name in row:
            value = row[name]
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"field {name!r} must be a non-empty string")
            return value
    raise KeyError(" or ".join(names))


def _identifier(row: dict, name: str = "entry_point") -> str:
    value = _text(row, name)
    if not value.isidentifier():
        raise ValueError(f"field {name!r} must be a Python identifier, got {value!r}")
    return value


def _compiles(source: str, field: str) -> None:
    try:
        ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"field {field!r} is not valid Python (line {exc.lineno}: {exc.msg})") from None


def _humaneval(task_id: str, row: dict) -> Task:
    prompt, entry_point, test = _text(row, "prompt"), _identifier(row), _text(row, "test")
    _compiles(test, "test")
    return Task(task_id=task_id, benchmark=BENCHMARK, prompt=prompt, entry_point=entry_point,
                tests=(check_call(test, entry_point),),
                canonical_solution=prompt + row["canonical_solution"] if row.get("canonical_solution") else "",
                metadata={"format": "humaneval"})


def _mbpp(task_id: str, row: dict) -> Task:
    asserts = row["test_list"]
    if not isinstance(asserts, list) or not asserts or not all(isinstance(a, str) and a.strip() for a in asserts):
        raise ValueError("field 'test_list' must be a non-empty list of assert lines")
    code = row.get("code") or ""
    setup = row.get("test_setup_code") or ""
    test = f"{setup}\n" + "\n".join(asserts) + "\n"
    _compiles(test, "test_list")
    entry_point = _identifier(row) if "entry_point" in row else entry_point_of(code, test)
    if not entry_point:
        raise ValueError("no 'entry_point', and none can be read from 'code' and 'test_list'")
    prompt = row["prompt"] if isinstance(row.get("prompt"), str) else mbpp_prompt(_text(row, "text"), asserts[0])
    return Task(task_id=task_id, benchmark=BENCHMARK, prompt=prompt, entry_point=entry_point, tests=(test,),
                canonical_solution=code, metadata={"format": "mbpp"})


def _bigcodebench(task_id: str, row: dict) -> Task:
    prompt, test = _text(row, "complete_prompt", "prompt"), _text(row, "test")
    entry_point = _identifier(row) if "entry_point" in row else "task_func"
    _compiles(test, "test")
    libs = task_libs(row) if "libs" in row else []
    return Task(task_id=task_id, benchmark=BENCHMARK, prompt=prompt,
                instruction=row.get("instruct_prompt") or prompt, entry_point=entry_point,
                tests=(unittest_call(test),),
                canonical_solution=prompt + row["canonical_solution"] if row.get("canonical_solution") else "",
                metadata={"format": "bigcodebench", "libs": libs})


_BUILDERS = {"humaneval": _humaneval, "mbpp": _mbpp, "bigcodebench": _bigcodebench}
