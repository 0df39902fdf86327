import pytest

from evals import datasets
from evals.datasets import DatasetError
from evals.datasets.bigcodebench import NUM_TASKS_FULL, environment_needs, pandas_optional_libs

SWEBENCH = datasets.swebench.Path("/work/shared/benchmarks/swebench")


@pytest.mark.parametrize("name,split,count", [
    ("humaneval", None, 164), ("humanevalplus", None, 164), ("mbpp", "test", 500), ("mbpp", "train", 374),
    ("mbpp", "validation", 90), ("mbppplus", None, 378), ("bigcodebench", "complete", 1140),
    ("bigcodebench", "instruct", 1140),
])
def test_counts(name, split, count):
    tasks = datasets.load(name, split)
    assert len(tasks) == count
    assert len({t.task_id for t in tasks}) == count
    assert all(t.tests and t.canonical_solution and t.entry_point for t in tasks)


def test_mbpp_split_ids():
    test = datasets.load("mbpp", "test")
    assert test[0].task_id == "Mbpp/11" and test[-1].task_id == "Mbpp/510"
    assert datasets.load("mbpp", "train")[0].task_id == "Mbpp/601"
    assert datasets.load("mbpp", "validation")[0].task_id == "Mbpp/511"


def test_plus_tasks_have_base_and_plus():
    t = datasets.load("humanevalplus")[0]
    assert t.test_names == ("base", "plus") and len(t.tests) == 2
    m = datasets.load("mbppplus")[0]
    assert "assert similar_elements" in m.prompt and m.entry_point == "similar_elements"


def test_bigcodebench_subset_and_instruct():
    sub = datasets.load("bigcodebench", "instruct", subset="numpy-pandas")
    assert len(sub) == 467 < NUM_TASKS_FULL
    assert all(set(t.metadata["libs"]) <= set(datasets.bigcodebench._STDLIB) | {"numpy", "pandas"} for t in sub)
    assert sub[0].instruction != sub[0].prompt and "task_func" in sub[0].instruction
    assert len(datasets.load("bigcodebench", subset="stdlib")) == 293


def test_bigcodebench_subsets_leave_out_measured_needs_and_say_so():
    needs = environment_needs()
    assert set(needs.values()) == {"network access", "programs the image lacks"}
    assert set(needs) <= {t.task_id for t in datasets.load("bigcodebench")}  # full keeps every task
    for subset in ("stdlib", "numpy-pandas"):
        assert not {t.task_id for t in datasets.load("bigcodebench", subset=subset)} & set(needs)
    coverage = datasets.coverage("bigcodebench", "numpy-pandas", 467)
    assert coverage.startswith("subset numpy-pandas: 467 of 1140 tasks (41.0%); left out")
    for reason in ("matplotlib via pandas 9", "openpyxl via pandas 4", "network access 3", "programs the image lacks 3"):
        assert reason in coverage
    assert datasets.coverage("bigcodebench", None, 1140) == "subset full: 1140 of 1140 tasks (100.0%)"
    assert datasets.coverage("humaneval", None, 164) == "164 tasks"


def test_pandas_optional_libs_are_found_from_the_calls():
    plot = {"canonical_solution": "    return df.plot(kind='bar')\n", "test": "import pandas as pd\n"}
    assert pandas_optional_libs(plot, ["pandas"]) == ["matplotlib"]
    assert pandas_optional_libs(plot, ["numpy"]) == []  # no pandas, no lazy import through it
    excel = {"canonical_solution": "    df = pd.read_excel(path)\n", "test": "df.hist(column='a')\n"}
    assert pandas_optional_libs(excel, ["pandas"]) == ["matplotlib", "openpyxl"]
    plain = {"canonical_solution": "    return df.plotted, df.history\n", "test": ""}
    assert pandas_optional_libs(plain, ["pandas"]) == []


@pytest.mark.skipif(not SWEBENCH.is_dir(), reason="shared SWE-bench folder absent")
def test_swebench_instances():
    tasks = datasets.load("swebench", swebench_dir=SWEBENCH)
    assert len(tasks) == 29
    inst = tasks[0].metadata["instance"]
    assert isinstance(inst["FAIL_TO_PASS"], list) and inst["FAIL_TO_PASS"]


def test_bad_input_is_clear(tmp_path):
    with pytest.raises(DatasetError, match="unknown benchmark"):
        datasets.load("nope")
    with pytest.raises(DatasetError, match="not found"):
        datasets.load("humaneval", path=tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="SWE-bench data not found"):
        datasets.load("swebench", swebench_dir=tmp_path)
    with pytest.raises(DatasetError, match="split"):
        datasets.load("mbpp", "dev")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": 1}\n')
    with pytest.raises(DatasetError, match="bad.jsonl:1: missing field"):
        datasets.load("humaneval", path=bad)
    bad.write_text('\nnot json\n')
    with pytest.raises(DatasetError, match="bad.jsonl:2: not valid JSON"):
        datasets.load("humaneval", path=bad)
