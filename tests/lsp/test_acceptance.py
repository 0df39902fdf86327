"""Acceptance telemetry bookkeeping: ids, passed-over on the next request, late accepts, close and flush."""

from __future__ import annotations

from lsp.acceptance import AcceptanceTracker
from lsp.acceptance_log import AcceptanceLog, final_events
from lsp.features.completion import to_completion_list
from lsp.features.inline_completion import to_inline_list
from lsp.suggestion import Suggestion

TEXT = "def add(a, b):\n    return \n"


def _show(tracker: AcceptanceTracker, uri: str = "file:///w/m.py", text: str = "a + b") -> str:
    return tracker.show(kind="inline", uri=uri, path="/w/m.py", text=TEXT, line=1, character=11,
                        encoding="utf-16", completion=text, source="engine", adapter=None)


def test_passed_over_accepted_and_late_accept(tmp_path):
    log = AcceptanceLog(tmp_path / "acc.jsonl")
    tracker = AcceptanceTracker(log, "/w", "tiny", home=tmp_path / "home")
    first = _show(tracker)
    tracker.request("file:///w/m.py")  # the next keystroke's request: first was passed over
    second = _show(tracker, text="b + a")
    assert tracker.accept(second) and not tracker.accept(second) and not tracker.accept("unknown")
    assert tracker.accept(first)  # an accept that arrived after the next request still counts
    events = log.read()
    assert [(e.event_id, e.accepted) for e in events] == [(first, False), (second, True), (first, True)]
    assert events[1].prefix == "def add(a, b):\n    return " and events[1].suffix == "\n"
    assert events[1].root == "/w" and events[1].model == "tiny" and (events[1].line, events[1].character) == (1, 11)
    assert [(e.event_id, e.accepted) for e in final_events(events)] == [(first, True), (second, True)]


def test_close_and_flush_pass_over_pending_suggestions(tmp_path):
    log = AcceptanceLog(tmp_path / "acc.jsonl")
    tracker = AcceptanceTracker(log, None, "", home=tmp_path / "home")
    a, b = _show(tracker, "file:///a.py"), _show(tracker, "file:///b.py")
    tracker.close("file:///a.py")
    assert [(e.event_id, e.accepted) for e in log.read()] == [(a, False)]
    tracker.flush()
    tracker.flush()
    assert [(e.event_id, e.accepted) for e in log.read()] == [(a, False), (b, False)]


def test_items_carry_the_accept_command_only_with_an_id():
    plain = Suggestion("a + b", 1, 11, "    return ", "engine")
    assert to_inline_list(plain).items[0].command is None and to_completion_list(plain).items[0].command is None
    tracked = Suggestion("a + b", 1, 11, "    return ", "engine", accept_id="abc")
    for item in (to_inline_list(tracked).items[0], to_completion_list(tracked).items[0]):
        assert item.command.command == "codeloop.acceptCompletion" and item.command.arguments == ["abc"]
