"""Accepted multi-line suggestions inside tested functions become repository FIM tasks; the rest are named.

Pure (a hand-made coverage map, no sandbox); the miner's end-to-end use of the acceptance log, gold check
included, is tests/evals/test_accepted_mining.py.
"""

from __future__ import annotations

import pytest

from codeloop.cli import main
from evals.repo.accepted import ORIGIN, tasks_from_acceptance
from evals.repo.task import FimTask
from lsp.acceptance_log import AcceptanceEvent
from sandbox.suite.coverage_map import CoverageMap

PREFIX = "def area(r):\n    "
BODY = "if r < 0:\n        raise ValueError(r)\n    return 3.14 * r * r\n"
SUFFIX = "\n\ndef other():\n    return 1\n"


def _event(completion: str, accepted: bool = True, event_id: str = "e1", path: str = "/repo/pkg/shapes.py",
           prefix: str = PREFIX):
    return AcceptanceEvent("completion", accepted, completion, prefix=prefix, suffix=SUFFIX, path=path,
                           event_id=event_id, line=1, character=4)


def _cmap(lines: dict[str, dict[int, list[int]]]) -> CoverageMap:
    return CoverageMap(root="/repo", key="k", commit=None, env={}, tests=["tests/test_s.py::test_area", "t::b"],
                       outcomes=["passed", "failed"], durations=[0.1, 0.1], lines=lines)


COVERED = _cmap({"pkg/shapes.py": {2: [0, 1], 3: [0]}})


def test_accepted_block_in_a_tested_function_becomes_a_task():
    events = [_event(BODY, accepted=False), _event(BODY), _event(BODY, accepted=False, event_id="e3")]
    tasks, reasons = tasks_from_acceptance(events, "/repo", COVERED, "repo", "/repo")
    assert len(tasks) == 1 and reasons == {}  # e3 was never accepted: not task material, no reason either
    task = tasks[0]
    assert task.splice(task.middle) == PREFIX + BODY + SUFFIX and task.document() == PREFIX + SUFFIX
    assert task.function == "area" and task.path == "pkg/shapes.py" and task.tests == ("tests/test_s.py::test_area",)
    assert (task.first_line, task.last_line, task.line, task.character, task.kind) == (2, 4, 1, 4, "block")
    assert task.extra[ORIGIN] == "e1"


def test_split_and_test_choice_are_the_callers():
    tasks, _ = tasks_from_acceptance([_event(BODY)], "/repo", COVERED, "repo", "/repo",
                                     split=lambda rel: f"split-of-{rel}", pick_tests=lambda tests: ("picked",))
    assert tasks[0].split == "split-of-pkg/shapes.py" and tasks[0].tests == ("picked",)
    assert tasks[0].num_covering_tests == 1


def test_every_accepted_event_without_a_task_has_a_one_line_reason():
    events = [_event("3.14 * r * r", event_id="single"), _event(BODY, event_id="outside", path="/elsewhere/x.py"),
              _event(BODY, event_id="nopath", path=""), _event(BODY, event_id="testfile", path="/repo/tests/test_s.py"),
              _event(BODY, event_id="notpy", path="/repo/pkg/notes.md"),
              _event("x = 1\ny = 2\n", event_id="toplevel", prefix=""), _event("if (:\n  x\n", event_id="syntax")]
    tasks, reasons = tasks_from_acceptance(events, "/repo", COVERED, "repo", "/repo")
    assert tasks == []
    assert reasons["single"] == "single-line suggestion"
    assert reasons["outside"] == "outside the repository /repo (/elsewhere/x.py)"
    assert reasons["nopath"] == "outside the repository /repo (no file path)"
    assert reasons["testfile"] == "tests/test_s.py: test file"
    assert reasons["notpy"] == "not a Python file (pkg/notes.md)"
    assert reasons["toplevel"] == "not inside a function"
    assert reasons["syntax"].startswith("the file with the suggestion does not parse")
    untested = _cmap({})
    assert tasks_from_acceptance([_event(BODY)], "/repo", untested, "repo", "/repo")[1] == {
        "e1": "no passing test runs pkg/shapes.py::area"}
    assert all("\n" not in why for why in reasons.values())


def test_a_suggestion_on_the_lines_of_a_task_already_made_is_a_duplicate():
    mined, _ = tasks_from_acceptance([_event(BODY, event_id="first")], "/repo", COVERED, "repo", "/repo")
    taken = [FimTask(**{**mined[0].as_dict(), "task_id": "repo:pkg/shapes.py:body:2:4", "extra": {}})]
    tasks, reasons = tasks_from_acceptance([_event(BODY, event_id="again")], "/repo", COVERED, "repo", "/repo",
                                           taken=taken)
    assert tasks == [] and reasons == {"again": "the same lines as task repo:pkg/shapes.py:body:2:4"}
    twice, reasons = tasks_from_acceptance([_event(BODY, event_id="a"), _event(BODY, event_id="b")], "/repo",
                                           COVERED, "repo", "/repo")
    assert len(twice) == 1 and reasons["b"].startswith("the same lines as task repo:pkg/shapes.py:accepted:2:4")


@pytest.mark.parametrize("command", [["tasks", "mine"], ["loop", "--model", "/no-model-needed", "--repo"]])
def test_a_missing_acceptance_log_is_a_one_line_error(tmp_path, capsys, command):
    (tmp_path / "pkg.py").write_text("def f():\n    return 1\n")
    run = ["--run-dir", str(tmp_path / "run")] if command[0] == "loop" else []
    assert main([*command, str(tmp_path), *run, "--acceptance-log", str(tmp_path / "nope.jsonl")]) == 2
    assert capsys.readouterr().err.strip() == f"codeloop: error: --acceptance-log {tmp_path / 'nope.jsonl'}: no such file"
