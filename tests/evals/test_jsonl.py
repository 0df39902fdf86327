"""One JSONL: torn lines are skipped when read, appends and atomic rewrites round-trip."""

from __future__ import annotations

from evals.jsonl import append_jsonl, read_jsonl, write_jsonl_atomic


def test_round_trip_and_a_torn_tail(tmp_path):
    path = tmp_path / "r.jsonl"
    assert read_jsonl(path) == []
    assert write_jsonl_atomic(path, [{"a": 1}, {"b": "é"}]) == 2
    append_jsonl(path, {"c": [1, 2]})
    with open(path, "a") as f:
        f.write('{"d": ')  # a writer killed mid-line
    assert read_jsonl(path) == [{"a": 1}, {"b": "é"}, {"c": [1, 2]}]
    assert write_jsonl_atomic(path, iter([{"x": 0}])) == 1
    assert read_jsonl(path) == [{"x": 0}]
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]  # no temporary file left behind
