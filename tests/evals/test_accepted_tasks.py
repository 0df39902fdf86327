"""Accepted multi-line suggestions inside tested functions become repository FIM tasks; the rest are named."""

from __future__ import annotations

from evals.repo.accepted import tasks_from_acceptance
from lsp.acceptance_log import AcceptanceEvent
from sandbox.suite.coverage_map import CoverageMap

PREFIX = "def area(r):\n    "
BODY = "if r < 0:\n        raise ValueError(r)\n    return 3.14 * r * r\n"
SUFFIX = "\n\ndef other():\n    return 1\n"


def _event(completion: str, accepted: bool = True, event_id: str = "e1", path: str = "/repo/pkg/shapes.py"):
    return AcceptanceEvent("completion", accepted, completion, prefix=PREFIX, suffix=SUFFIX, path=path,
                           event_id=event_id, line=1, character=4)


def test_accepted_block_in_a_tested_function_becomes_a_task():
    cmap = CoverageMap(root="/repo", key="k", commit=None, env={}, tests=["tests/test_s.py::test_area", "t::b"],
                       outcomes=["passed", "failed"], durations=[0.1, 0.1],
                       lines={"pkg/shapes.py": {2: [0, 1], 3: [0]}})
    events = [_event(BODY, accepted=False), _event(BODY), _event("3.14 * r * r", event_id="e2"),
              _event(BODY, accepted=False, event_id="e3"), _event(BODY, event_id="e4", path="/elsewhere/x.py")]
    tasks, skipped = tasks_from_acceptance(events, "/repo", cmap, "repo", "/repo")
    assert len(tasks) == 1 and skipped == ["e2: single-line suggestion"]
    task = tasks[0]
    assert task.splice(task.middle) == PREFIX + BODY + SUFFIX and task.document() == PREFIX + SUFFIX
    assert task.function == "area" and task.path == "pkg/shapes.py" and task.tests == ("tests/test_s.py::test_area",)
    assert (task.first_line, task.last_line, task.line, task.character) == (2, 4, 1, 4)
    untested = CoverageMap(root="/repo", key="k", commit=None, env={}, tests=[], outcomes=[], durations=[], lines={})
    assert tasks_from_acceptance(events[:2], "/repo", untested, "repo", "/repo")[1] == ["e1: no passing test runs area"]
    assert "no coverage map" in tasks_from_acceptance(events[:2], "/repo", None, "repo", "/repo")[1][0]
