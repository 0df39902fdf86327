"""The result protocol, parent side: record extraction, order validation, status decisions."""

from __future__ import annotations

import json

from sandbox.outcome import Observation, classify
from sandbox.protocol import RECORD_PREFIX, RecordScanner, parse_records, stdin_payload
from sandbox.types import RunStatus, TestStatus

NONCE = b"ab" * 16


def record(**fields) -> bytes:
    return RECORD_PREFIX + NONCE + b":" + json.dumps(fields).encode() + b"\n"


def scan(chunks: list[bytes]) -> tuple[bytes, RecordScanner]:
    text = bytearray()
    scanner = RecordScanner(NONCE, text.extend)
    for c in chunks:
        scanner.feed(c)
    scanner.close()
    return bytes(text), scanner


def test_records_are_removed_from_user_text_even_split_across_chunks():
    stream = b"hello " + record(event="start", n=1) + b"world\n" + record(event="code_ok")
    for size in (1, 3, 7, len(stream)):
        text, scanner = scan([stream[i:i + size] for i in range(0, len(stream), size)])
        assert text == b"hello world\n"
        assert [json.loads(r)["event"] for r in scanner.records] == ["start", "code_ok"]


def test_markers_with_another_nonce_are_plain_output():
    fake = RECORD_PREFIX + b"cd" * 16 + b':{"event": "done"}\n'
    text, scanner = scan([fake])
    assert text == fake and scanner.records == []


def test_cut_off_record_is_malformed():
    _, scanner = scan([record(event="start", n=1)[:-1]])
    assert scanner.malformed


def test_payload_carries_nonce_first_line_and_never_elsewhere():
    payload = stdin_payload(NONCE, "x = 1", ["assert x"], "/work")
    first, _, body = payload.partition(b"\n")
    assert first == NONCE and NONCE not in body
    assert json.loads(body)["tests"] == ["assert x"]


def _events(*evs) -> list[bytes]:
    return [json.dumps(e).encode() for e in evs]


def test_out_of_order_or_duplicate_records_are_violations():
    start, ok = {"event": "start", "n": 2}, {"event": "code_ok"}
    t0 = {"event": "test", "index": 0, "status": "passed"}
    assert parse_records(_events(start, ok, t0, t0)).violation
    assert parse_records(_events(start, {"event": "test", "index": 0, "status": "passed"})).violation
    assert parse_records(_events(start, ok, {"event": "done"})).violation  # tests missing
    assert parse_records([b"not json"]).violation
    good = parse_records(_events(start, ok, t0, {"event": "test", "index": 1, "status": "failed"}, {"event": "done"}))
    assert not good.violation and good.done


def _obs(records, **kw) -> Observation:
    base = dict(transcript=parse_records(_events(*records)), declared_tests=None, stdout="", stderr="",
                duration_s=0.1, exit_code=0, timeout_s=1.0, output_limit=10)
    base.update(kw)
    return Observation(**base)


def test_classify_statuses():
    start, ok, done = {"event": "start", "n": 2}, {"event": "code_ok"}, {"event": "done"}
    p = {"event": "test", "index": 0, "status": "passed"}
    f = {"event": "test", "index": 1, "status": "failed", "message": "AssertionError: boom"}
    r = classify(_obs([start, ok, p, f, done]))
    assert r.status is RunStatus.FAILED and r.fraction_passed == 0.5 and "boom" in r.message
    assert classify(_obs([start, ok, p, dict(f, status="passed"), done])).status is RunStatus.PASSED
    assert classify(_obs([start, ok, p], timed_out=True)).status is RunStatus.TIMEOUT
    early = classify(_obs([start, ok, p]))
    assert early.status is RunStatus.ERROR
    assert [t.status for t in early.tests] == [TestStatus.PASSED, TestStatus.NOT_RUN]
    assert classify(_obs([start], exit_code=137, oom=True)).status is RunStatus.MEMORY
    assert classify(_obs([start], exit_code=137, oom=False)).status is RunStatus.KILLED
    assert classify(_obs([start], exit_code=139)).status is RunStatus.KILLED
    assert classify(_obs([start, ok, p], output_exceeded=True)).status is RunStatus.KILLED
    err = classify(_obs([start, {"event": "code_error", "kind": "NameError", "message": "NameError: x"}]))
    assert err.status is RunStatus.ERROR and "NameError" in err.message
    assert classify(_obs([], exit_code=1, stderr="bwrap: oops")).status is RunStatus.SANDBOX_ERROR
    assert classify(_obs([start, ok, p, p])).status is RunStatus.ERROR  # duplicate = violation


def test_a_kill_by_the_parent_is_not_taken_for_oom():
    start, ok, done = {"event": "start", "n": 0}, {"event": "code_ok"}, {"event": "done"}
    r = classify(_obs([start, ok, done], exit_code=137, parent_killed=True))
    assert r.status is RunStatus.PASSED
    assert classify(_obs([start], exit_code=137, parent_killed=True)).status is RunStatus.KILLED
    assert classify(_obs([start], exit_code=137)).status is RunStatus.MEMORY  # unknown cgroup: heuristic
