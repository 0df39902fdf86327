"""The acceptance log: append-only, torn lines skipped and repaired, events with tests become tasks."""

from __future__ import annotations

import pytest

from rl.acceptance import AcceptanceEvent, AcceptanceLog, tasks_from_log


def test_record_read_and_torn_tail(tmp_path):
    log = AcceptanceLog(tmp_path / "a" / "log.jsonl")
    log.record(AcceptanceEvent("inline", True, "return a + b\n", prefix="def add(a, b):\n    ", path="m.py",
                               tests=["assert add(1, 2) == 3", "assert add(0, 0) == 0"]))
    log.record(AcceptanceEvent("completion", False, "pass"))
    with open(log.path, "ab") as f:
        f.write(b'{"kind": "inline", "acc')  # a writer killed mid-line
    assert [e.accepted for e in log.read()] == [True, False]
    log.record(AcceptanceEvent("chat", True, "x = 1", instruction="set x"))
    events = log.read()
    assert [e.kind for e in events] == ["inline", "completion", "chat"] and all(e.time > 0 for e in events)
    assert log.acceptance_rate() == pytest.approx(2 / 3)
    tasks = tasks_from_log(log.path)
    assert len(tasks) == 1 and tasks[0].entry_point == "add" and tasks[0].source == "acceptance"
    assert tasks[0].reference == "def add(a, b):\n    return a + b\n"


def test_bad_events_are_refused():
    with pytest.raises(ValueError, match="kind"):
        AcceptanceEvent("hover", True, "")
    with pytest.raises(ValueError, match="bool"):
        AcceptanceEvent("inline", "yes", "")
