import json

import pytest

from evals.results import JsonlStore, SampleResult, result_record
from evals.rundir import RunDir, RunDirError
from evals.spec import EvalSpec


def rec(task, i, passed=True):
    return result_record(SampleResult(task, i, passed, "passed" if passed else "failed"))


def test_append_and_load_roundtrip(tmp_path):
    store = JsonlStore(tmp_path / "r.jsonl")
    store.append(rec("a", 0))
    store.append(rec("b", 0, False))
    records, report = store.load()
    assert set(records) == {("a", 0), ("b", 0)} and not report.corrupt_lines and not report.truncated_tail
    assert SampleResult.from_dict(records[("b", 0)]).passed is False


def test_kill_simulation_truncated_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    store.append(rec("a", 0))
    line = json.dumps(rec("b", 0)) + "\n"
    with open(path, "a") as f:
        f.write(line[: len(line) // 2])  # killed mid-write
    records, report = store.load()
    assert set(records) == {("a", 0)} and report.truncated_tail
    store.repair_tail()
    store.append(rec("b", 0))  # the resumed run redoes b exactly once
    records, report = store.load()
    assert set(records) == {("a", 0), ("b", 0)} and not report.truncated_tail
    assert path.read_text().count("\n") == 2


def test_unterminated_but_whole_json_tail_counts_as_not_written(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec("a", 0)) + "\n" + json.dumps(rec("b", 0)))
    records, report = JsonlStore(path).load()
    assert set(records) == {("a", 0)} and report.truncated_tail


def test_corrupt_middle_line_reported_and_skipped_duplicates_ignored(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([json.dumps(rec("a", 0)), "{garbage", json.dumps(rec("a", 0, False)),
                               json.dumps(rec("c", 1))]) + "\n")
    records, report = JsonlStore(path).load()
    assert report.corrupt_lines == [2] and report.duplicates == 1
    assert records[("a", 0)]["passed"] is True and ("c", 1) in records


def test_rundir_refuses_overwrite_and_mismatched_resume(tmp_path):
    spec = EvalSpec("humaneval", run_dir=tmp_path / "run")
    RunDir(spec.run_dir, spec).open()
    with pytest.raises(RunDirError, match="--resume"):
        RunDir(spec.run_dir, spec).open()
    other = EvalSpec("humaneval", run_dir=tmp_path / "run", resume=True, max_tokens=7)
    with pytest.raises(RunDirError, match="max_tokens"):
        RunDir(other.run_dir, other).open()
    same = EvalSpec("humaneval", run_dir=tmp_path / "run", resume=True)
    RunDir(same.run_dir, same).open()


def test_spec_validation():
    with pytest.raises(ValueError, match="temperature"):
        EvalSpec("humaneval", samples=5)
    with pytest.raises(ValueError, match="backend"):
        EvalSpec("humaneval", backend="vllm")
