"""Decontamination: every task source against every eval set, by id, shared n-gram and MinHash; reported."""

from __future__ import annotations

import json

from rl.config import config_from_dict
from rl.decontamination import FIM_FIELDS, EvalIndex, EvalItem, decontaminate, default_index
from rl.loop import build_tasks
from rl.tasks import RLTask

ODD = "Write a python function to remove odd numbers from a given list, keeping the order of the rest.\n" \
      "assert remove_odd([1,2,3]) == [2]"
EVAL = [
    EvalItem("mbppplus", "Mbpp/412", f'"""\n{ODD}\n"""\n', "def remove_odd(l):\n    return [x for x in l if x % 2 == 0]\n"),
    EvalItem("humaneval", "HumanEval/0", '"""Check if in given list of numbers, are any two numbers closer to each '
             'other than given threshold."""', "def has_close_elements(numbers, threshold):\n    return False\n"),
]


def task(task_id: str, text: str, reference: str = "def f(x):\n    return x\n") -> RLTask:
    return RLTask(task_id, f'"""\n{text}\n"""\n', ("assert f(1) == 1",), reference, "f", source="test")


def test_each_rule_removes_what_it_should_and_says_why():
    index = EvalIndex(EVAL)
    tasks = [
        task("Mbpp/412", "A different wording entirely, same id."),
        task("t/copied", "Helper: check if in given list of numbers are any two numbers closer to each other than "
                         "given threshold, please."),
        task("t/sibling", "Write a python function to remove even numbers from a given list, keeping the order of "
                          "the rest.\nassert remove_even([1,2,3]) == [1, 3]"),
        task("t/clean", "Write a function that reverses the words of a sentence.\nassert rev('a b') == 'b a'"),
    ]
    kept, report = decontaminate(tasks, "test", index)
    assert [t.task_id for t in kept] == ["t/clean"]
    reasons = {r["task_id"]: (r["reason"], r["eval_task_id"]) for r in report.removed}
    assert reasons == {"Mbpp/412": ("id", "Mbpp/412"), "t/copied": ("ngram", "HumanEval/0"),
                       "t/sibling": ("minhash", "Mbpp/412")}
    assert report.as_dict()["removed_by_reason"] == {"id": 1, "ngram": 1, "minhash": 1}
    assert (report.num_in, report.num_kept) == (4, 1)


def test_layout_and_numbers_do_not_hide_a_copy():
    index = EvalIndex(EVAL)
    copied = "def has_close_elements(numbers,threshold): return False  # check if in given list of numbers, " \
             "are any two numbers closer to each other than given threshold 0.3"
    assert index.match("x", "Write code.", copied).reason == "ngram"


def test_mbpp_train_pool_is_disjoint_from_every_eval_set(tmp_path):
    """Defect 1 of issue 23: MBPP train held 108 MBPP+ tasks (and near-duplicates of MBPP test/validation)."""
    config = config_from_dict({"run_dir": str(tmp_path), "tasks": {"sources": ["mbpp-train"], "validate": False}})
    tasks = build_tasks(config)
    index = default_index()
    eval_ids = {item.task_id for item in index.items.values()}
    assert tasks and not eval_ids & {t.task_id for t in tasks}
    assert all(index.match(t.task_id, t.instruction, t.reference) is None for t in tasks)
    report = json.loads((tmp_path / "decontamination.json").read_text())
    mbpp = next(r for r in report if r["source"] == "mbpp-train")
    assert mbpp["num_in"] == 374 and mbpp["removed_by_reason"]["id"] == 108
    assert mbpp["num_kept"] == len(tasks) == 374 - len(mbpp["removed"])


def test_acceptance_tasks_go_through_the_same_filter(tmp_path):
    from rl.acceptance import AcceptanceEvent, AcceptanceLog

    log = AcceptanceLog(tmp_path / "accept.jsonl")
    he = next(i for i in default_index().items.values() if i.task_id == "HumanEval/0")
    log.record(AcceptanceEvent("chat", True, he.solution, prefix=he.problem, tests=["assert True"]))
    log.record(AcceptanceEvent("chat", True, "def double(x):\n    return 2 * x\n", instruction="Double a number.",
                               tests=["assert double(2) == 4"]))
    config = config_from_dict({"run_dir": str(tmp_path / "run"), "tasks": {
        "sources": ["acceptance"], "validate": False, "acceptance_log": str(tmp_path / "accept.jsonl")}})
    tasks = build_tasks(config)
    assert [t.task_id for t in tasks] == ["accepted/1"]
    report = json.loads((tmp_path / "run" / "decontamination.json").read_text())
    assert report[0]["source"] == "acceptance" and report[0]["removed"][0]["eval_task_id"] == "HumanEval/0"


def test_repository_fim_tasks_use_the_same_api():
    """The repository task source plugs in with ``FIM_FIELDS``: a hole whose code is an eval solution goes."""
    from types import SimpleNamespace

    index = EvalIndex(EVAL)
    leaked = SimpleNamespace(task_id="repo:a.py:body:3:4", prefix="import os\n\ndef remove_odd(l):\n",
                             middle="    kept = [x for x in l if x % 2 == 0]  # remove odd numbers from a given list, "
                                    "keeping the order of the rest\n    return kept\n", suffix="\n")
    fine = SimpleNamespace(task_id="repo:a.py:body:9:4", prefix="def area(w, h):\n", middle="    return w * h\n",
                           suffix="")
    kept, report = decontaminate([leaked, fine], "repo:a", index, **FIM_FIELDS)
    assert kept == [fine] and report.removed[0]["eval_task_id"] == "Mbpp/412"
