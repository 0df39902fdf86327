"""`codeloop eval custom FILE.jsonl`: a user's own benchmark in HumanEval, MBPP or BigCodeBench record format,
and official-format samples of partial runs completed for evalplus / bigcodebench."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evals import datasets
from evals.datasets.custom import detect_format, load_custom
from evals.datasets.files import DatasetError
from evals.official_samples import complete_samples, write_samples

HUMANEVAL_RECORD = {
    "task_id": "my/add", "prompt": 'def add(a, b):\n    """Sum of a and b."""\n', "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
}
MBPP_RECORD = {
    "task_id": 7, "text": "Write a function to reverse a string.", "code": "def rev(s):\n    return s[::-1]\n",
    "test_list": ["assert rev('ab') == 'ba'", "assert rev('') == ''"],
}
BIGCODEBENCH_RECORD = {
    "task_id": "my/1", "complete_prompt": "import math\n\ndef task_func(r):\n    \"\"\"Area of a circle.\"\"\"\n",
    "instruct_prompt": "Compute the area of a circle of radius r.", "entry_point": "task_func",
    "canonical_solution": "    return math.pi * r * r\n", "libs": "['math']",
    "test": "import unittest\n\nclass TestCases(unittest.TestCase):\n"
            "    def test_unit(self):\n        self.assertAlmostEqual(task_func(1), 3.141592653589793)\n",
}


def _write(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_each_format_is_detected_from_its_fields_and_becomes_a_task(tmp_path: Path) -> None:
    assert [detect_format(r) for r in (HUMANEVAL_RECORD, MBPP_RECORD, BIGCODEBENCH_RECORD)] == [
        "humaneval", "mbpp", "bigcodebench"]
    tasks = datasets.load("custom", path=_write(tmp_path / "b.jsonl", HUMANEVAL_RECORD, MBPP_RECORD,
                                                BIGCODEBENCH_RECORD))
    he, mbpp, bcb = tasks
    assert [t.benchmark for t in tasks] == ["custom"] * 3 and [t.task_id for t in tasks] == ["my/add", "7", "my/1"]
    assert he.tests[0].endswith("check(add)\n") and he.canonical_solution.endswith("return a + b\n")
    assert mbpp.entry_point == "rev" and "assert rev('ab') == 'ba'" in mbpp.prompt  # EvalPlus-style MBPP prompt
    assert bcb.instruction == BIGCODEBENCH_RECORD["instruct_prompt"] and bcb.metadata["libs"] == ["math"]
    assert "TestLoader().loadTestsFromTestCase(TestCases)" in bcb.tests[0]


@pytest.mark.parametrize("record,message", [
    ({**HUMANEVAL_RECORD, "entry_point": None}, "record 2 (task_id 'my/add'), humaneval format: field 'entry_point' "
                                                "must be a non-empty string"),
    ({k: v for k, v in HUMANEVAL_RECORD.items() if k != "prompt"}, "missing field 'prompt'"),
    ({**HUMANEVAL_RECORD, "test": "assert add(1, 1) == 2"}, "not a HumanEval (test defining check(candidate))"),
    ({**MBPP_RECORD, "test_list": []}, "'test_list' must be a non-empty list"),
    ({**MBPP_RECORD, "test_list": ["assert rev('a' =="]}, "'test_list' is not valid Python"),
    ({**BIGCODEBENCH_RECORD, "entry_point": "task func"}, "must be a Python identifier"),
    ({"prompt": "x"}, "record 2: missing 'task_id'"),
    ({**MBPP_RECORD, "task_id": "ok"}, "record 2 (task_id 'ok'): task_id appears twice"),
])
def test_the_first_bad_record_is_named(tmp_path: Path, record: dict, message: str) -> None:
    path = _write(tmp_path / "b.jsonl", {**HUMANEVAL_RECORD, "task_id": "ok"}, record, {"garbage": True})
    with pytest.raises(DatasetError) as info:
        load_custom(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_broken_json_and_empty_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(HUMANEVAL_RECORD) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not valid JSON"):
        load_custom(bad)
    with pytest.raises(DatasetError, match="no records"):
        load_custom(_write(tmp_path / "empty.jsonl"))


@pytest.mark.skipif(not shutil.which("bwrap"), reason="needs bubblewrap (scripts/sandbox_setup.sh)")
def test_canonical_solutions_pass_and_wrong_ones_fail_in_the_sandbox(tmp_path: Path) -> None:
    from evals.execute import Candidate, ExecConfig, judge

    tasks = load_custom(_write(tmp_path / "b.jsonl", HUMANEVAL_RECORD, MBPP_RECORD, BIGCODEBENCH_RECORD))
    wrong = {"my/add": "def add(a, b):\n    return a - b\n", "7": "def rev(s):\n    return s\n",
             "my/1": "def task_func(r):\n    return 3 * r * r\n"}
    candidates = [Candidate(t, 0, "", t.canonical_solution) for t in tasks]
    candidates += [Candidate(t, 1, "", wrong[t.task_id]) for t in tasks]
    verdicts = [r.passed for r in judge(candidates, ExecConfig(backend="bwrap", concurrency=2))]
    assert verdicts == [True, True, True, False, False, False]


def test_custom_run_end_to_end_with_the_tiny_model(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    from evals.benchmark_runner import evaluate
    from evals.spec import EvalSpec

    data = _write(tmp_path / "mine.jsonl", HUMANEVAL_RECORD, MBPP_RECORD, BIGCODEBENCH_RECORD)
    spec = EvalSpec(benchmark="custom", data_path=data, model=str(tiny_qwen2_dir), max_tokens=8,
                    run_dir=tmp_path / "run", progress=False, engine_options={"num_threads": 1})
    summary = evaluate(spec)
    assert summary.benchmark == "custom" and summary.num_tasks == 3 and summary.num_results == 3
    assert summary.coverage == "3 tasks (your file)" and "pass@1" in summary.pass_at_k
    rows = [json.loads(line) for line in (spec.run_dir / "samples.jsonl").read_text().splitlines()]
    assert [set(r) for r in rows] == [{"task_id", "completion", "solution"}, {"task_id", "completion", "solution"},
                                      {"task_id", "solution"}]  # each record's own official format
    assert json.loads((spec.run_dir / "run.json").read_text())["identity"]["data_path"] == str(data.resolve())


def test_partial_runs_get_a_file_the_official_tools_accept(tmp_path: Path) -> None:
    tasks = datasets.load("humaneval")[:3]
    records = {(t.task_id, 0): {"program": t.canonical_solution} for t in tasks}
    samples = write_samples(tmp_path, tasks, records, "m")
    assert len(samples.read_text().splitlines()) == 3  # exactly the tasks run
    done = complete_samples(samples, "humaneval")
    rows = [json.loads(line) for line in done.path.read_text().splitlines()]
    assert len(rows) == 164 and [r["task_id"] for r in rows] == [f"HumanEval/{i}" for i in range(164)]
    assert rows[0]["solution"] == tasks[0].canonical_solution and rows[3] == {
        "task_id": "HumanEval/3", "completion": "", "solution": ""}
    assert (done.num_run, done.num_filled, done.num_tasks) == (3, 161, 164)
    assert "161 not run filled with empty solutions" in done.note() and "evalplus.evaluate" in done.note()
    bcb = [t for t in datasets.load("bigcodebench", subset="stdlib")][:2]
    bcb_samples = write_samples(tmp_path, bcb, {(t.task_id, 0): {"program": "x = 1\n"} for t in bcb}, "m")
    full = [json.loads(line) for line in complete_samples(bcb_samples, "bigcodebench").path.read_text().splitlines()]
    assert len(full) == 1140 and all(set(r) == {"task_id", "solution"} for r in full)
    with pytest.raises(ValueError, match="no official tool"):
        complete_samples(samples, "mbpp")
    with pytest.raises(ValueError, match="not in mbppplus"):
        complete_samples(samples, "mbppplus")


def test_a_limited_run_states_the_completed_file_in_its_summary(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    from evals.benchmark_runner import evaluate
    from evals.spec import EvalSpec

    summary = evaluate(EvalSpec(benchmark="humaneval", model=str(tiny_qwen2_dir), limit=2, max_tokens=4,
                                run_dir=tmp_path / "run", progress=False, engine_options={"num_threads": 1}))
    assert any("samples-full.jsonl: 2 tasks run + 162 not run" in note for note in summary.notes)
    assert len((tmp_path / "run" / "samples-full.jsonl").read_text().splitlines()) == 164
